"""collector.store.statements.split_statements: where a SQL script's statements end."""

from __future__ import annotations

import pytest

from collector.errors import MigrationError
from collector.store.statements import split_statements

CASES = [
    ("empty", "", []),
    ("only comments", "-- a;\n/* b; */\n", []),
    ("two statements", "SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("the last without a semicolon", "SELECT 1;\nSELECT 2\n", ["SELECT 1", "SELECT 2"]),
    ("empty statements", ";;SELECT 1;;", ["SELECT 1"]),
    (
        "comments before a statement are dropped, those inside kept",
        "-- header; with a semicolon\nSELECT 1 -- one;\n, 2;",
        ["SELECT 1 -- one;\n, 2"],
    ),
    (
        "nested block comments",
        "SELECT /* a /* b; */ c; */ 1; SELECT 2",
        ["SELECT /* a /* b; */ c; */ 1", "SELECT 2"],
    ),
    ("a string", "SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
    ("a doubled quote", "SELECT 'it''s; fine'; SELECT 2", ["SELECT 'it''s; fine'", "SELECT 2"]),
    ("an E string", r"SELECT E'a\';b'; SELECT 2", [r"SELECT E'a\';b'", "SELECT 2"]),
    ("a backslash in a plain string", "SELECT 'a\\'; SELECT 2", ["SELECT 'a\\'", "SELECT 2"]),
    ("a quoted identifier", 'SELECT 1 AS "a;""b"; SELECT 2', ['SELECT 1 AS "a;""b"', "SELECT 2"]),
    ("dashes in a string", "SELECT '--;'; SELECT 2", ["SELECT '--;'", "SELECT 2"]),
    (
        "a dollar-quoted body",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; SELECT 2 $$;\nSELECT 3;",
        ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; SELECT 2 $$", "SELECT 3"],
    ),
    (
        "a tagged body holding $$, strings and comments",
        "DO $body$ BEGIN EXECUTE $q$ SELECT ';' $q$; -- ';\n PERFORM $$x;$$; END $body$; SELECT 1",
        [
            "DO $body$ BEGIN EXECUTE $q$ SELECT ';' $q$; -- ';\n PERFORM $$x;$$; END $body$",
            "SELECT 1",
        ],
    ),
    (
        "a quote inside a body",
        "DO $$ BEGIN RAISE NOTICE 'it''s'; END $$; SELECT 1",
        ["DO $$ BEGIN RAISE NOTICE 'it''s'; END $$", "SELECT 1"],
    ),
    (
        "positional parameters are not quotes",
        "SELECT $1, $2; SELECT 3",
        ["SELECT $1, $2", "SELECT 3"],
    ),
    ("a dollar inside a word", "SELECT a$b$ FROM t; SELECT 2", ["SELECT a$b$ FROM t", "SELECT 2"]),
]


@pytest.mark.parametrize(("script", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_split_statements(script: str, expected: list[str]) -> None:
    assert split_statements(script) == expected


@pytest.mark.parametrize(
    ("script", "what"),
    [
        ("SELECT 'a; SELECT 2", "unterminated string starting on line 1"),
        ('SELECT "a', "unterminated quoted identifier"),
        ("SELECT 1;\n/* a /* b */", "unterminated comment starting on line 2"),
        ("DO $x$ BEGIN END $y$", r"unterminated dollar-quoted text \$x\$"),
    ],
)
def test_unterminated_text_is_an_error(script: str, what: str) -> None:
    with pytest.raises(MigrationError, match=what):
        split_statements(script)
