"""Everything that sends to Telegram: rendering replies, and (later) the outbox sender and dispatcher."""
