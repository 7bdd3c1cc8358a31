"""Cutting migration scripts into the single statements the Data API runs."""

from __future__ import annotations

import pytest

from lambdas.db_migrator.sql import SqlSyntaxError, split_statements


def test_statements_are_cut_at_top_level_semicolons() -> None:
    script = "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n\n  SELECT 1  "

    assert split_statements(script) == ["CREATE TABLE a (x int)", "INSERT INTO a VALUES (1)", "SELECT 1"]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 'a;b'; SELECT 2;", ["SELECT 'a;b'", "SELECT 2"]),
        ("SELECT 'it''s; fine'; SELECT 2;", ["SELECT 'it''s; fine'", "SELECT 2"]),
        ("SELECT E'\\'; still a string'; SELECT 2;", ["SELECT E'\\'; still a string'", "SELECT 2"]),
        ('SELECT 1 AS "odd;name"; SELECT 2;', ['SELECT 1 AS "odd;name"', "SELECT 2"]),
        ("DO $$ BEGIN PERFORM 1; END $$; SELECT 2;", ["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"]),
        (
            "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql; SELECT 2;",
            ["CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql", "SELECT 2"],
        ),
        (
            "SELECT 1; -- a comment; with a semicolon\nSELECT 2;",
            ["SELECT 1", "-- a comment; with a semicolon\nSELECT 2"],
        ),
        ("SELECT /* a; /* nested; */ still; */ 1; SELECT 2;", ["SELECT /* a; /* nested; */ still; */ 1", "SELECT 2"]),
    ],
)
def test_semicolons_inside_literals_identifiers_bodies_and_comments_do_not_cut(
    script: str, expected: list[str]
) -> None:
    assert split_statements(script) == expected


def test_an_identifier_ending_in_e_does_not_start_an_escape_string() -> None:
    # `name'...'` is not E'...': a backslash there is an ordinary character and the quote closes.
    assert split_statements("SELECT name'\\'; SELECT 2;") == ["SELECT name'\\'", "SELECT 2"]


def test_positional_parameters_and_dollar_in_identifiers_are_not_dollar_quotes() -> None:
    script = "PREPARE p AS SELECT $1; SELECT a$b FROM t;"

    assert split_statements(script) == ["PREPARE p AS SELECT $1", "SELECT a$b FROM t"]


def test_comment_only_fragments_are_dropped() -> None:
    script = "-- header\n/* block */\n;\nSELECT 1;\n-- trailer\n"

    assert split_statements(script) == ["SELECT 1"]


@pytest.mark.parametrize(
    ("script", "what"),
    [
        ("SELECT 'open", "unterminated string literal"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT 1 /* open", "unterminated block comment"),
        ("DO $body$ BEGIN", "unterminated dollar-quoted string $body$"),
    ],
)
def test_an_unterminated_construct_is_an_error_not_a_guess(script: str, what: str) -> None:
    with pytest.raises(SqlSyntaxError, match=what.replace("$", r"\$")):
        split_statements(script)
