"""The research export: nobody can be found in it, consent decides whose words leave, the codebook covers every
column, and pseudonyms are stable under one key and unlinkable across keys."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bot.cli import main as cli_main
from bot.core.conversation import Conversation
from bot.core.types import Person
from bot.settings import PROJECT_ROOT, load_settings
from content.library import Library
from research.demo import fill
from research.export import export
from research.kanon import OTHER, QI, generalise
from research.pseudonyms import Pseudonyms, SaltError, key_id
from research.schema import codebook_markdown
from research.tables import TABLES
from storage.codebook import EventKind
from storage.db import Database
from storage.research import Period, json_objects

SALT = "test-salt-for-research-exports-0123456789"
OTHER_SALT = "another-salt-for-research-exports-9876543210"
AYESHA = Person(channel="telegram", external_id="5550001234", display_name="Ayesha Siddiqui", language_hint="en")
BILAL = Person(channel="telegram", external_id="5550005678", display_name="Bilal Chaudhry", language_hint="ur")
ZARA = Person(channel="telegram", external_id="5550009012", display_name="Zara Qureshi", language_hint="en")
# What must never appear in any exported file: Telegram ids, names, the username and the personal details typed.
FORBIDDEN = (
    "5550001234", "5550005678", "5550009012", "Ayesha", "Siddiqui", "Bilal", "Chaudhry", "Zara", "Qureshi",
    "ayesha_sid", "0300-1234567", "ayesha.s@gmail.com", "35202-1234567-1", "03211234567", SALT,
)  # fmt: skip


async def seed(conversation: Conversation) -> None:
    """Three people through the real core: Ayesha consents, Bilal never does, Zara consents and withdraws."""
    await conversation.command(AYESHA, "start")
    await conversation.press(AYESHA, "consent:yes")
    await conversation.handle_text(
        AYESHA, "I am Ayesha Siddiqui, call me on 0300-1234567 or ayesha.s@gmail.com. How do I make a fiverr gig?"
    )
    await conversation.handle_text(AYESHA, "my telegram is @ayesha_sid and my cnic is 35202-1234567-1")
    await conversation.handle_text(AYESHA, "I have chosen my skill")
    await conversation.command(BILAL, "start")
    await conversation.handle_text(BILAL, "Bilal here, upwork account kaise banaun? 03211234567")
    await conversation.command(ZARA, "start")
    await conversation.press(ZARA, "consent:yes")
    await conversation.handle_text(ZARA, "Zara speaking: payoneer withdrawal kaise karun?")
    await conversation.press(ZARA, "consent:no")
    assert await conversation.journal.flush()


def exported_text(folder: Path) -> str:
    """Everything in the folder as text: CSV and JSON as they are, Parquet decoded (its pages are compressed) plus
    its raw bytes (metadata)."""
    parts = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False))
            parts.append(path.read_bytes().decode("latin-1"))
        else:
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def rows_of(folder: Path, table: str) -> list[dict[str, object]]:
    csv_path, parquet_path = folder / f"{table}.csv", folder / f"{table}.parquet"
    if parquet_path.exists():
        return [dict(row) for row in pq.read_table(parquet_path).to_pylist()]
    with csv_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def header_of(folder: Path, table: str) -> list[str]:
    if (folder / f"{table}.parquet").exists():
        return list(pq.read_schema(folder / f"{table}.parquet").names)
    with (folder / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_no_exported_file_names_or_ids_anyone(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path, fmt: str
) -> None:
    """Telegram ids, names, the @username and the phone, e-mail and CNIC typed are in no file, in any format."""
    await seed(conversation)
    result = await export(db, out=tmp_path, salt=SALT, library=library, fmt=fmt, progress=None)
    text = exported_text(tmp_path).casefold()
    found = [secret for secret in FORBIDDEN if secret.casefold() in text]
    assert found == []
    assert {p.name for p in result.files} == {f"{t.name}.{fmt}" for t in TABLES} | {"datapackage.json", "manifest.json"}
    events = rows_of(tmp_path, "events")
    assert all(e["at"] is None or str(e["at"])[17:19] in ("00", "") for e in events)  # nothing finer than a minute


async def test_only_consenting_users_words_leave_and_they_are_scrubbed(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path
) -> None:
    """Ayesha consents: her questions are there, scrubbed. Bilal never consented and Zara withdrew: none of theirs."""
    await seed(conversation)
    result = await export(db, out=tmp_path, salt=SALT, library=library, progress=None)
    texts = [str(e["text"]) for e in rows_of(tmp_path, "events") if e["text"]]
    assert any("How do I make a fiverr gig?" in t for t in texts)
    assert any("[name] [name], call me on [phone] or [email]" in t for t in texts)
    assert any("[username]" in t and "[cnic]" in t for t in texts)
    assert not any("upwork account kaise" in t or "payoneer withdrawal" in t for t in texts)
    assert result.manifest["consent"]["consenting"] == 1
    assert result.manifest["consent"]["withdrawn"] == 1
    assert result.manifest["consent"]["never_consented"] == 1
    users = rows_of(tmp_path, "users")
    assert sorted(str(u["research_consent"]) for u in users) == ["false", "false", "true"]


async def test_every_exported_column_is_in_the_datapackage_and_the_codebook(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path
) -> None:
    """datapackage.json and docs/CODEBOOK.md describe exactly the columns written, with a type and a description."""
    await seed(conversation)
    await export(db, out=tmp_path, salt=SALT, library=library, progress=None)
    package = json.loads((tmp_path / "datapackage.json").read_text(encoding="utf-8"))
    codebook = (PROJECT_ROOT / "docs" / "CODEBOOK.md").read_text(encoding="utf-8")
    assert codebook == codebook_markdown(TABLES), "docs/CODEBOOK.md is out of date: run `rahnuma codebook`"
    for resource in package["resources"]:
        header = header_of(tmp_path, resource["name"])
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == header
        assert all(f["type"] and f["description"] for f in fields)
        section = codebook.split(f"## `{resource['name']}`", 1)[1].split("\n## ", 1)[0]
        missing = [column for column in header if f"| `{column}` |" not in section]
        assert missing == [], f"{resource['name']}: columns missing from docs/CODEBOOK.md"
    kinds = {row["kind"] for row in rows_of(tmp_path, "events")}
    events_kind = next(f for f in TABLES[1].fields if f.name == "kind")
    assert kinds <= {value for value, _ in events_kind.values_described} == {k.value for k in EventKind}


async def test_same_key_same_pseudonyms_other_key_unlinkable(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path
) -> None:
    await seed(conversation)
    first = await export(db, out=tmp_path / "a", salt=SALT, library=library, progress=None)
    again = await export(db, out=tmp_path / "b", salt=SALT, library=library, progress=None)
    other = await export(db, out=tmp_path / "c", salt=OTHER_SALT, library=library, progress=None)
    ids = {name: {str(u["user_id"]) for u in rows_of(tmp_path / name, "users")} for name in ("a", "b", "c")}
    assert ids["a"] == ids["b"] and len(ids["a"]) == 3
    assert ids["a"].isdisjoint(ids["c"])
    event_ids = {str(e["user_id"]) for e in rows_of(tmp_path / "c", "events") if e["user_id"]}
    assert event_ids <= ids["c"]  # every table joins on the same pseudonyms
    assert first.manifest["pseudonym_key_id"] == again.manifest["pseudonym_key_id"] == key_id(SALT)
    assert other.manifest["pseudonym_key_id"] != first.manifest["pseudonym_key_id"]
    assert first.manifest["tables"]["users"]["sha256"] == again.manifest["tables"]["users"]["sha256"]


def test_pseudonyms_need_a_long_salt_and_say_which_variable() -> None:
    for salt in (None, "", "short"):
        with pytest.raises(SaltError, match="RAHNUMA_RESEARCH_SALT"):
            Pseudonyms(salt)
    pseudonyms = Pseudonyms(SALT)
    assert pseudonyms.user(42) == Pseudonyms(SALT).user(42) != Pseudonyms(OTHER_SALT).user(42)
    assert pseudonyms.of("user", 42) != pseudonyms.of("outbox", 42)


def test_export_without_the_salt_stops_with_the_variables_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAHNUMA_RESEARCH_SALT", "too-short")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert cli_main(["export", "--out", str(tmp_path / "out")]) == 2
    assert "RAHNUMA_RESEARCH_SALT is too short" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_salt_is_a_secret_kept_out_of_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAHNUMA_RESEARCH_SALT", SALT)
    assert SALT in load_settings().secrets()


def test_rare_combinations_are_generalised_city_first() -> None:
    """k = 5: a combination shared by fewer than 5 loses its city, then its skill, then its platforms."""
    week = "2026-W48"
    counts: Counter[QI] = Counter(
        {
            ("lahore", "graphic design", "fiverr", week): 7,  # common: kept
            ("chitral", "graphic design", "fiverr", week): 2,  # rare city: joins "other" (with skardu below)
            ("skardu", "graphic design", "fiverr", week): 3,
            ("karachi", "calligraphy", "upwork", week): 1,  # rare everywhere: ends with all three "other"
        }
    )
    result = generalise(counts, k=5)
    assert result.mapping[("lahore", "graphic design", "fiverr", week)] == ("lahore", "graphic design", "fiverr", week)
    assert result.mapping[("chitral", "graphic design", "fiverr", week)] == (OTHER, "graphic design", "fiverr", week)
    assert result.mapping[("karachi", "calligraphy", "upwork", week)] == (OTHER, OTHER, OTHER, week)
    assert result.generalised["city"] == 6 and result.users_generalised == 6
    assert result.still_below_k == 1  # only its start week is left, and the manifest says so


async def test_users_table_is_k_anonymous_and_the_manifest_counts_it(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path
) -> None:
    await seed(conversation)
    result = await export(db, out=tmp_path, salt=SALT, library=library, progress=None)
    summary = result.manifest["k_anonymity"]
    assert summary["k"] == 5 and summary["users"] == 3 and summary["users_generalised"] + summary["still_below_k"] >= 0
    users = rows_of(tmp_path, "users")
    combos = Counter((u["city"], u["skill"], u["platforms"], u["cohort"]) for u in users)
    for (city, skill, platforms, _), n in combos.items():
        assert n >= 5 or (city in ("", OTHER) and skill in ("", OTHER) and platforms in ("", OTHER))


async def test_period_limits_the_events(
    conversation: Conversation, db: Database, library: Library, tmp_path: Path
) -> None:
    await seed(conversation)
    everything = await export(db, out=tmp_path / "all", salt=SALT, library=library, progress=None)
    assert everything.manifest["tables"]["events"]["rows"] > 0
    from tests.conftest import TEST_NOW  # the clock the conversation used

    later = Period(since=TEST_NOW.replace(year=2027))
    none = await export(db, out=tmp_path / "none", salt=SALT, library=library, period=later, progress=None)
    assert none.manifest["tables"]["events"]["rows"] == 0
    assert none.manifest["period"]["since"] == "2027-11-27T04:00:00Z"


def test_parquet_keeps_the_types(tmp_path: Path) -> None:
    """Times are timestamp[ms, UTC], dates date32, flags bool: a researcher's pandas sees the right types."""
    from research.export import ParquetWriter
    from research.tables import MILESTONES, USERS

    writer = ParquetWriter(tmp_path / "m.parquet", MILESTONES.fields)
    writer.write([("u1", "chose_skill", 1, "2026-11-27T04:05:00Z", "text", 1.5)])
    writer.close()
    schema = pq.read_schema(tmp_path / "m.parquet")
    assert str(schema.field("done_at").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("rung").type) == "int64"
    assert {f.name for f in USERS.fields if f.type == "boolean"} == {"research_consent", "blocked", "proactive_stopped"}


def _as_csv(value: object) -> str:
    """A Parquet value as the CSV writer writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


async def test_both_formats_carry_the_same_rows_and_each_nudge_knows_its_button_presses(
    db: Database, library: Library, tmp_path: Path
) -> None:
    """The event log is built column by column, the other tables row by row: CSV and Parquet hold the same values
    either way. A nudge is `opened` exactly when a `nudge_opened` event names it (the presses are grouped once)."""
    from tests.conftest import TEST_NOW

    await fill(db, library=library, users=120, seed=5, until=TEST_NOW, weeks=6)
    for fmt in ("csv", "parquet"):
        await export(db, out=tmp_path / fmt, salt=SALT, library=library, fmt=fmt, progress=None)
    for table in TABLES:
        parquet = [
            {name: _as_csv(value) for name, value in row.items()} for row in rows_of(tmp_path / "parquet", table.name)
        ]
        assert rows_of(tmp_path / "csv", table.name) == parquet, table.name
    events, nudges = rows_of(tmp_path / "csv", "events"), rows_of(tmp_path / "csv", "nudges")
    pressed = {e["nudge_id"] for e in events if e["kind"] == EventKind.NUDGE_OPENED}
    assert pressed and {n["nudge_id"] for n in nudges if n["opened"] == "true"} == pressed
    assert any(e["text"] for e in events) and any(n["responded"] == "true" for n in nudges)


def test_event_details_are_decoded_a_batch_at_a_time_and_only_objects_kept() -> None:
    assert json_objects(['{"decision":"answer"}', None, "[1]", '"x"', "{}"]) == [
        {"decision": "answer"},
        None,
        None,
        None,
        {},
    ]
    assert json_objects([{"helpful": True}, '{"helpful":false}']) == [{"helpful": True}, {"helpful": False}]
    assert json_objects([]) == []
    with pytest.raises(json.JSONDecodeError):  # two broken halves must not pass as one object
        json_objects(['{"a":1', '"b":2}'])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_an_export_in_two_processes_writes_the_same_files(
    committed_db: Database, library: Library, tmp_path: Path, fmt: str
) -> None:
    """`parallel` (the CLI): the event log is written by a second process with its own connection; every file is
    the same byte for byte as in one process, and the manifest lists the tables in the same order, with the period
    pinned to the export's start."""
    from tests.conftest import TEST_NOW

    await fill(committed_db, library=library, users=60, seed=3, until=TEST_NOW, weeks=4)
    one = await export(
        committed_db, out=tmp_path / "one", salt=SALT, library=library, fmt=fmt, progress=None, now=TEST_NOW
    )
    two = await export(
        committed_db, out=tmp_path / "two", salt=SALT, library=library, fmt=fmt, progress=None, now=TEST_NOW,
        parallel=True,
    )  # fmt: skip
    assert one.manifest["tables"]["events"]["rows"] > 100
    assert list(two.manifest["tables"]) == list(one.manifest["tables"])
    # Both processes read up to the moment the export started (a row written meanwhile is in neither).
    assert two.manifest.pop("period") == {"since": None, "until": "2026-11-27T04:00:00Z"}
    one.manifest.pop("period")
    assert two.manifest == one.manifest
    for path in one.files:
        if path.name != "manifest.json":  # compared above, but for the period
            assert (tmp_path / "two" / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_an_event_log_split_between_two_processes_is_the_same_file(
    committed_db: Database, library: Library, tmp_path: Path, fmt: str
) -> None:
    """A long period: the second process writes the event log from a place on (a whole batch in), the first writes
    the rest and appends the second's part; the file is the one a single process writes, row group for row group,
    and no part file is left behind."""
    from tests.conftest import TEST_NOW

    await fill(committed_db, library=library, users=60, seed=4, until=TEST_NOW, weeks=4)
    options = {"salt": SALT, "library": library, "fmt": fmt, "progress": None, "now": TEST_NOW, "batch": 100}
    one = await export(committed_db, out=tmp_path / "one", **options)  # type: ignore[arg-type]
    events = one.manifest["tables"]["events"]["rows"]
    assert events > 450
    split = await export(
        committed_db,
        out=tmp_path / "split",
        parallel=True,
        first_events=250,
        **options,  # type: ignore[arg-type]
    )
    assert split.manifest["tables"]["events"] == one.manifest["tables"]["events"]
    for path in one.files:
        if path.name != "manifest.json":
            assert (tmp_path / "split" / path.name).read_bytes() == path.read_bytes(), path.name
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(p.name for p in one.files)
