"""Research: pseudonymised exports with a codebook, and a report with plots (issue 11; docs/RESEARCH.md).

Depends on storage/ and content/, never on bot/: the bot calls into it (`rahnuma export`, `rahnuma report`,
/export), not the other way round.
"""
