"""load_table: every supported input, read from real public data, and every bad input.

The tables are bundled in tests/data/tables (see helpers.data_file). Files in other formats are
written from samples of them into tmp_path, so each test stays well under a second.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from helpers import data_file
from mlre.data.load import Table, load_table
from mlre.errors import InputError, MlreError

ADULT = data_file("adult")
GERMAN = data_file("german_credit")
FISHING = data_file("fishing_mode")

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income-per-year",
]
SAMPLE_ROWS = 2_000


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def adult_full() -> pd.DataFrame:
    """The whole Adult table, read with pandas (independently of mlre's loader)."""
    return pd.read_csv(ADULT)


@pytest.fixture(scope="module")
def adult(adult_full: pd.DataFrame) -> pd.DataFrame:
    """The first 2,000 rows of Adult: the source for files written in other formats."""
    return adult_full.head(SAMPLE_ROWS).reset_index(drop=True)


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    """Write text (in ``encoding``) or bytes to ``path``, creating its folder; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def csv_text(frame: pd.DataFrame, sep: str = ",") -> str:
    """A frame as delimited text with a header and no index."""
    return frame.to_csv(index=False, sep=sep, lineterminator="\n")


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, same order, same values (dtype storage details aside)."""
    assert list(got.columns) == list(expected.columns)
    assert got.shape == expected.shape
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def assert_adult_dtypes(frame: pd.DataFrame) -> None:
    """Numbers stay numbers and categories stay text, as a user of Adult expects."""
    for col in ("age", "fnlwgt", "education-num", "hours-per-week"):
        assert pd.api.types.is_integer_dtype(frame[col]), col
    for col in ("workclass", "education", "income-per-year"):
        assert pd.api.types.is_string_dtype(frame[col]), col


def input_error(call: Callable[[], object], *words: str) -> InputError:
    """Run ``call``, expect an InputError whose message holds every word, with a non-empty hint."""
    with pytest.raises(InputError) as info:
        call()
    err = info.value
    assert isinstance(err, MlreError)
    for word in words:
        assert word.lower() in err.message.lower(), (word, err.message)
    assert err.hint and err.hint.strip(), err.message
    return err


# --------------------------------------------------------------------------- CSV / TSV


def test_real_gzipped_csv_loads_whole_table() -> None:
    table = load_table(ADULT)

    assert isinstance(table, Table)
    assert table.frame.shape == (32_561, 15)
    assert (table.n_rows, table.n_cols) == (32_561, 15)
    assert list(table.frame.columns) == ADULT_COLUMNS
    assert_adult_dtypes(table.frame)
    assert set(table.frame["income-per-year"]) == {"<=50K", ">50K"}
    assert table.format == "csv"
    assert table.source == str(ADULT)
    assert table.details == {"encoding": "utf-8", "delimiter": ",", "compression": "gzip"}
    assert table.sha256 == hashlib.sha256(ADULT.read_bytes()).hexdigest()


def test_small_real_tables_load(adult_full: pd.DataFrame) -> None:
    german = load_table(GERMAN)
    fishing = load_table(FISHING)

    assert german.frame.shape == (1_000, 21)
    assert german.frame["credit"].isin([1, 2]).all()
    assert pd.api.types.is_integer_dtype(german.frame["credit_amount"])
    assert_same_frame(fishing.frame, pd.read_csv(FISHING))
    assert pd.api.types.is_float_dtype(fishing.frame["income"])


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        pytest.param("adult.csv", ",", id="comma"),
        pytest.param("adult.tsv", "\t", id="tsv-by-extension"),
        pytest.param("adult.txt", "\t", id="tab-by-content"),
        pytest.param("adult.csv", ";", id="semicolon"),
        pytest.param("adult.csv", "|", id="pipe"),
        pytest.param("adult.psv", "|", id="psv-extension"),
        pytest.param("adult", ";", id="no-extension"),
    ],
)
def test_delimiter_is_detected(tmp_path: Path, adult: pd.DataFrame, name: str, sep: str) -> None:
    path = write(tmp_path / name, csv_text(adult, sep))

    table = load_table(path)

    assert table.details["delimiter"] == sep
    assert table.details["compression"] is None
    assert_same_frame(table.frame, adult)
    assert_adult_dtypes(table.frame)


def test_tab_extension_wins_over_commas_in_values(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.tsv", "id\tnote\n1\ta, b, c, d\n2\te, f, g, h\n")

    table = load_table(path)

    assert table.details["delimiter"] == "\t"
    assert table.frame["note"].tolist() == ["a, b, c, d", "e, f, g, h"]


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        pytest.param("adult.tsv", ";", id="semicolon-file-named-tsv"),
        pytest.param("adult.tsv", ",", id="comma-file-named-tsv"),
        pytest.param("adult.txt", "|", id="pipe-file-named-txt"),
    ],
)
def test_explicit_delimiter_overrides_detection(
    tmp_path: Path, adult: pd.DataFrame, name: str, sep: str
) -> None:
    path = write(tmp_path / name, csv_text(adult.head(300), sep))

    table = load_table(path, delimiter=sep)

    assert table.details["delimiter"] == sep
    assert_same_frame(table.frame, adult.head(300))


def test_wrong_explicit_delimiter_is_obeyed(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = write(tmp_path / "adult.csv", csv_text(adult.head(50), ";"))

    table = load_table(path, delimiter=",")

    assert table.details["delimiter"] == ","
    assert table.frame.shape == (50, 1)  # the user asked for commas; the whole line is one field


def test_quoted_fields_keep_delimiters_quotes_and_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "quoted.csv",
        "id,comment,score\n"
        '1,"Smith, John",3.5\n'
        '2,"first line\nsecond line",4.0\n'
        '3,"she said ""hi"", then left",5.5\n'
        "4,plain,6.0\n",
    )

    table = load_table(path)

    assert table.frame.shape == (4, 3)
    assert table.frame["comment"].tolist() == [
        "Smith, John",
        "first line\nsecond line",
        'she said "hi", then left',
        "plain",
    ]
    assert table.frame["id"].tolist() == [1, 2, 3, 4]
    assert table.frame["score"].tolist() == [3.5, 4.0, 5.5, 6.0]


def test_quoted_real_values_round_trip(tmp_path: Path, adult: pd.DataFrame) -> None:
    frame = adult.head(200).copy()
    frame["occupation"] = (
        frame["occupation"] + ", " + frame["relationship"] + "\n(" + frame["race"] + ")"
    )
    path = write(tmp_path / "adult_quoted.csv", frame.to_csv(index=False, quoting=1))

    table = load_table(path)

    assert_same_frame(table.frame, frame)


def test_crlf_line_ends(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = write(
        tmp_path / "adult_crlf.csv", adult.head(100).to_csv(index=False, lineterminator="\r\n")
    )

    table = load_table(path)

    assert_same_frame(table.frame, adult.head(100))
    assert table.frame["income-per-year"].str.endswith("\r").sum() == 0


def test_na_values_turn_question_marks_into_missing(adult_full: pd.DataFrame) -> None:
    plain = load_table(ADULT)
    with_na = load_table(ADULT, na_values=["?"])

    assert plain.frame["workclass"].isna().sum() == 0
    assert (plain.frame["workclass"] == "?").sum() == 1_836
    assert with_na.frame["workclass"].isna().sum() == 1_836
    assert "?" not in set(with_na.frame["workclass"].dropna())
    missing = with_na.frame.isna().sum()
    assert missing[missing > 0].to_dict() == {
        "workclass": 1_836,
        "occupation": 1_843,
        "native-country": 583,
    }
    assert with_na.frame.shape == plain.frame.shape == adult_full.shape


def test_default_missing_markers(tmp_path: Path) -> None:
    path = write(tmp_path / "na.csv", "x,y\n1,NA\n2,\n3,null\n4,ok\n")

    table = load_table(path)

    assert table.frame["y"].isna().tolist() == [True, True, True, False]


def test_single_column_file(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = write(tmp_path / "ages.csv", csv_text(adult[["age"]].head(100)))

    table = load_table(path)

    assert table.frame.shape == (100, 1)
    assert table.frame["age"].tolist() == adult["age"].head(100).tolist()


# --------------------------------------------------------------------------- compression


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    ("name", "compress", "compression", "sep"),
    [
        pytest.param("adult.csv.gz", _gzip, "gzip", ",", id="csv.gz"),
        pytest.param("adult.tsv.gz", _gzip, "gzip", "\t", id="tsv.gz"),
        pytest.param("adult.csv.zst", _zstd, "zstd", ",", id="csv.zst"),
        pytest.param("adult.csv.zstd", _zstd, "zstd", ";", id="csv.zstd-semicolon"),
        pytest.param("adult_export", _gzip, "gzip", ",", id="gzip-no-suffix"),
        pytest.param("adult_export", _zstd, "zstd", ",", id="zstd-no-suffix"),
        pytest.param("adult.csv", _gzip, "gzip", ",", id="gzip-named-csv"),
        pytest.param("adult.csv", _zstd, "zstd", "|", id="zstd-named-csv"),
    ],
)
def test_compression_is_detected_from_bytes(
    tmp_path: Path,
    adult: pd.DataFrame,
    name: str,
    compress: Callable[[bytes], bytes],
    compression: str,
    sep: str,
) -> None:
    path = write(tmp_path / name, compress(csv_text(adult, sep).encode()))

    table = load_table(path)

    assert table.details == {"encoding": "utf-8", "delimiter": sep, "compression": compression}
    assert_same_frame(table.frame, adult)
    assert_adult_dtypes(table.frame)


# --------------------------------------------------------------------------- encodings

WESTERN = {
    "french": "nom,ville,n\nJosé,Besançon,1\nFrançois,Orléans,2\nRenée,Nîmes,3\nCafé,Évry,4\n",
    "spanish": "nombre,ciudad,n\nNuñez,Córdoba,1\nIbáñez,Logroño,2\nMaría,Cádiz,3\n",
    "german": "name,stadt,n\nJürgen Müller,München,1\nGroße Straße,Köln,2\nÄrger,Düsseldorf,3\n",
    "portuguese": "nome,cidade,n\nJoão,São Paulo,1\nConceição,Goiânia,2\nAntônio,Brasília,3\n",
    "mixed": "name,city,n\nJosé,Málaga,1\nFrançois,Zürich,2\nRenée,Besançon,3\n",
}


@pytest.mark.parametrize("file_encoding", ["cp1252", "latin-1"])
@pytest.mark.parametrize("language", sorted(WESTERN))
def test_western_single_byte_text_is_detected(
    tmp_path: Path, language: str, file_encoding: str
) -> None:
    text = WESTERN[language]
    path = write(tmp_path / f"{language}.csv", text, encoding=file_encoding)
    expected = pd.read_csv(io.StringIO(text))

    table = load_table(path)

    assert table.details["encoding"] == "cp1252"
    assert_same_frame(table.frame, expected)


def test_cp1252_real_table_with_accented_values(tmp_path: Path, adult: pd.DataFrame) -> None:
    frame = adult.copy()
    frame["native-country"] = frame["native-country"].replace(
        {"Mexico": "México", "Peru": "Perú", "Canada": "Canadá", "Germany": "Köln, Deutschland"}
    )
    path = write(tmp_path / "adult_cp1252.csv", csv_text(frame), encoding="cp1252")

    table = load_table(path)

    assert table.details["encoding"] == "cp1252"
    assert_same_frame(table.frame, frame)
    assert (
        (table.frame["native-country"] == "México").sum()
        == (adult["native-country"] == "Mexico").sum()
        > 0
    )
    assert "Köln, Deutschland" in set(table.frame["native-country"])


def test_utf8_with_accents(tmp_path: Path) -> None:
    text = WESTERN["mixed"] + "Ωmega,東京,4\n"
    path = write(tmp_path / "utf8.csv", text)

    table = load_table(path)

    assert table.details["encoding"] == "utf-8"
    assert_same_frame(table.frame, pd.read_csv(io.StringIO(text)))


def test_utf8_bom_is_not_part_of_first_column(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = write(tmp_path / "adult_bom.csv", csv_text(adult), encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    table = load_table(path)

    assert table.details["encoding"] == "utf-8-sig"
    assert table.frame.columns[0] == "age"
    assert not table.frame.columns[0].startswith("\ufeff")
    assert_same_frame(table.frame, adult)
    assert pd.api.types.is_integer_dtype(table.frame["age"])


def test_utf16_with_bom(tmp_path: Path) -> None:
    text = WESTERN["spanish"]
    path = write(tmp_path / "utf16.csv", text, encoding="utf-16")

    table = load_table(path)

    assert table.details["encoding"] == "utf-16"
    assert_same_frame(table.frame, pd.read_csv(io.StringIO(text)))


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "iso-8859-1"])
def test_explicit_encoding_is_used(tmp_path: Path, encoding: str) -> None:
    text = WESTERN["french"]
    path = write(tmp_path / "french.csv", text, encoding="latin-1")

    table = load_table(path, encoding=encoding)

    assert table.details["encoding"] == encoding
    assert table.frame["nom"].tolist() == ["José", "François", "Renée", "Café"]


def test_explicit_encoding_fixes_what_detection_cannot_know(tmp_path: Path) -> None:
    # Czech in cp1250 is also valid cp1252 ('Řehoř' would read as 'Øehoø'): only the user knows.
    text = "jméno,město\nŘehoř,Plzeň\nJiří Dvořák,České Budějovice\n"
    path = write(tmp_path / "czech.csv", text, encoding="cp1250")

    table = load_table(path, encoding="cp1250")

    assert table.frame["jméno"].tolist() == ["Řehoř", "Jiří Dvořák"]
    assert table.frame["město"].tolist() == ["Plzeň", "České Budějovice"]


# --------------------------------------------------------------------------- Parquet / JSON


def test_parquet_file(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = tmp_path / "adult.parquet"
    adult.to_parquet(path, index=False)

    table = load_table(path)

    assert table.format == "parquet"
    assert table.details == {}
    assert_same_frame(table.frame, adult)
    assert_adult_dtypes(table.frame)


def test_parquet_detected_by_magic_without_suffix(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = tmp_path / "adult_export.bin"
    adult.head(100).to_parquet(path, index=False)

    table = load_table(path)

    assert table.format == "parquet"
    assert_same_frame(table.frame, adult.head(100))


def test_folder_of_parquet_parts(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "adult_parts"
    folder.mkdir()
    for i in range(4):
        adult.iloc[i * 500 : (i + 1) * 500].to_parquet(folder / f"part-{i}.parquet", index=False)
    write(folder / "_SUCCESS", b"")
    write(folder / ".hidden.parquet", b"not parquet")
    write(folder / "_temporary" / "0" / "part-9.parquet", b"PAR1 half-written")
    write(folder / "README.md", "# Adult, in four parts")

    table = load_table(folder)

    assert table.format == "parquet"
    assert table.details == {"files": 4}
    assert table.source == str(folder)
    assert_same_frame(table.frame, adult)
    assert_adult_dtypes(table.frame)


def test_hive_partitioned_parquet_folder(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "adult_by_year"
    for year, rows in ((2020, adult.iloc[:300]), (2021, adult.iloc[300:500])):
        (folder / f"year={year}").mkdir(parents=True)
        rows.to_parquet(folder / f"year={year}" / "part.parquet", index=False)

    table = load_table(folder)

    assert table.details == {"files": 2}
    assert table.frame.shape == (500, 16)
    assert list(table.frame.columns) == [*ADULT_COLUMNS, "year"]
    assert table.frame["year"].value_counts().to_dict() == {2020: 300, 2021: 200}
    assert pd.api.types.is_integer_dtype(table.frame["year"])
    assert_same_frame(table.frame[ADULT_COLUMNS], adult.iloc[:500])


def test_folder_of_csv_parts(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "adult_csv"
    write(folder / "a.csv", csv_text(adult.iloc[:700]))
    write(folder / "b.csv.gz", gzip.compress(csv_text(adult.iloc[700:1500]).encode()))
    write(folder / "c.csv", csv_text(adult.iloc[1500:]))
    write(folder / "README.md", "not data")

    table = load_table(folder)

    assert table.format == "csv"
    assert table.details == {"files": 3}
    assert_same_frame(table.frame, adult)


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        pytest.param(
            "adult.jsonl", lambda f: f.to_json(orient="records", lines=True).encode(), id="jsonl"
        ),
        pytest.param(
            "adult.ndjson", lambda f: f.to_json(orient="records", lines=True).encode(), id="ndjson"
        ),
        pytest.param(
            "adult.jsonl.gz",
            lambda f: gzip.compress(f.to_json(orient="records", lines=True).encode()),
            id="jsonl.gz",
        ),
        pytest.param("adult.json", lambda f: f.to_json(orient="records").encode(), id="json-array"),
        pytest.param(
            "adult.json",
            lambda f: b"  \n" + f.to_json(orient="records", indent=2).encode(),
            id="json-array-indented",
        ),
    ],
)
def test_json(
    tmp_path: Path, adult: pd.DataFrame, name: str, writer: Callable[[pd.DataFrame], bytes]
) -> None:
    frame = adult.head(300)
    path = write(tmp_path / name, writer(frame))

    table = load_table(path)

    assert table.format == "json"
    assert_same_frame(table.frame, frame)
    assert_adult_dtypes(table.frame)


def test_json_lines_with_mixed_types_falls_back(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.jsonl", '{"id": 1, "v": 1}\n{"id": 2, "v": "two"}\n')

    table = load_table(path)

    assert table.frame["id"].tolist() == [1, 2]
    assert table.frame["v"].tolist() == [1, "two"]


# --------------------------------------------------------------------------- SQL


@pytest.fixture
def german_duckdb(tmp_path: Path) -> Path:
    path = tmp_path / "credit.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table german as select * from read_csv_auto(?)", [str(GERMAN)])
    con.execute("create table fishing as select * from read_csv_auto(?)", [str(FISHING)])
    con.close()
    return path


@pytest.fixture
def fishing_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "fishing.sqlite"
    con = sqlite3.connect(path)
    pd.read_csv(FISHING).to_sql("fishing", con, index=False)
    pd.read_csv(GERMAN).head(10).to_sql("german", con, index=False)
    con.close()
    return path


def test_duckdb_database(german_duckdb: Path) -> None:
    table = load_table(sql="select * from german", db=german_duckdb)

    assert table.format == "sql"
    assert table.details == {"sql": "select * from german", "engine": "duckdb"}
    assert "select * from german" in table.source and str(german_duckdb) in table.source
    assert_same_frame(table.frame, pd.read_csv(GERMAN))
    assert pd.api.types.is_integer_dtype(table.frame["credit_amount"])


def test_duckdb_query_filters(german_duckdb: Path) -> None:
    german = pd.read_csv(GERMAN)

    table = load_table(
        sql="select purpose, credit_amount from german where credit = 2", db=german_duckdb
    )

    assert list(table.frame.columns) == ["purpose", "credit_amount"]
    assert len(table.frame) == (german["credit"] == 2).sum() == 300


def test_duckdb_query_gives_no_warning(german_duckdb: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = load_table(sql="select * from fishing", db=german_duckdb)

    assert table.frame.shape == (1_182, 10)


def test_duckdb_database_is_not_modified(german_duckdb: Path) -> None:
    before = german_duckdb.read_bytes()

    load_table(sql="select count(*) as n from fishing", db=german_duckdb)

    assert german_duckdb.read_bytes() == before


def test_sqlite_database(fishing_sqlite: Path) -> None:
    table = load_table(sql="select * from fishing", db=fishing_sqlite)

    assert table.details == {"sql": "select * from fishing", "engine": "sqlite"}
    assert_same_frame(table.frame, pd.read_csv(FISHING))
    assert pd.api.types.is_float_dtype(table.frame["income"])
    assert set(table.frame["mode"]) == {"beach", "pier", "boat", "charter"}


@pytest.mark.parametrize("kind", ["parquet", "csv", "csv.gz"])
def test_sql_over_files_without_db(tmp_path: Path, adult: pd.DataFrame, kind: str) -> None:
    path = tmp_path / f"adult.{kind}"
    if kind == "parquet":
        adult.to_parquet(path, index=False)
    else:
        adult.to_csv(path, index=False)
    sql = f"select * from '{path}' where age > 50"

    table = load_table(sql=sql)

    assert table.details == {"sql": sql, "engine": "duckdb"}
    assert_same_frame(table.frame, adult[adult["age"] > 50])


def test_sql_over_real_gzipped_csv() -> None:
    table = load_table(
        sql=f"select \"income-per-year\" as y, count(*) as n from '{ADULT}' group by 1 order by 1"
    )

    assert table.frame.to_dict("list") == {"y": ["<=50K", ">50K"], "n": [24_720, 7_841]}


# --------------------------------------------------------------------------- sha256


def test_sha256_identifies_content_not_name(tmp_path: Path, adult: pd.DataFrame) -> None:
    text = csv_text(adult.head(500))
    first = load_table(write(tmp_path / "one.csv", text))
    second = load_table(write(tmp_path / "other" / "two.csv", text))
    changed = text.replace("State-gov", "State-gox", 1)
    assert len(changed) == len(text) and changed != text
    third = load_table(write(tmp_path / "three.csv", changed))

    assert first.sha256 == second.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert third.sha256 != first.sha256
    assert len(first.sha256) == 64


def test_sha256_of_parquet_and_sql(
    tmp_path: Path, adult: pd.DataFrame, german_duckdb: Path
) -> None:
    path = tmp_path / "adult.parquet"
    adult.to_parquet(path, index=False)
    raw = bytearray(path.read_bytes())

    assert load_table(path).sha256 == hashlib.sha256(raw).hexdigest()
    a = load_table(sql="select * from german", db=german_duckdb).sha256
    b = load_table(sql="select * from german", db=german_duckdb).sha256
    c = load_table(sql="select * from german where credit = 1", db=german_duckdb).sha256
    assert a == b != c


# --------------------------------------------------------------------------- bad input: files


def test_missing_file_suggests_close_name(tmp_path: Path, adult: pd.DataFrame) -> None:
    write(tmp_path / "adult_sample.csv", csv_text(adult.head(10)))

    err = input_error(
        lambda: load_table(tmp_path / "adult_sampel.csv"), "does not exist", "adult_sampel.csv"
    )

    assert "adult_sample.csv" in err.hint
    assert "did you mean" in err.hint


def test_missing_file_without_neighbours(tmp_path: Path) -> None:
    err = input_error(lambda: load_table(tmp_path / "nowhere" / "data.csv"), "does not exist")

    assert "path" in err.hint


def test_no_input_at_all() -> None:
    input_error(lambda: load_table(), "no data")


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.jsonl", "empty"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    input_error(lambda: load_table(write(tmp_path / name, b"")), "is empty")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("blank.csv", b"   \n\n \t \r\n", id="csv"),
        pytest.param("blank.csv.gz", gzip.compress(b"\n\n  \n"), id="gzip"),
        pytest.param("blank.csv.gz", gzip.compress(b""), id="gzip-of-nothing"),
        pytest.param("blank.jsonl", b"\n  \n", id="jsonl"),
    ],
)
def test_whitespace_only_file(tmp_path: Path, name: str, content: bytes) -> None:
    input_error(lambda: load_table(write(tmp_path / name, content)), "empty")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(",".join(ADULT_COLUMNS) + "\n", id="lf"),
        pytest.param(",".join(ADULT_COLUMNS) + "\r\n", id="crlf"),
        pytest.param(",".join(ADULT_COLUMNS), id="no-line-end"),
        pytest.param("\ufeff" + ",".join(ADULT_COLUMNS) + "\n", id="bom"),
    ],
)
def test_header_only(tmp_path: Path, content: str) -> None:
    input_error(
        lambda: load_table(write(tmp_path / "header.csv", content)), "header", "no data rows"
    )


def test_sql_returning_no_rows(fishing_sqlite: Path, german_duckdb: Path) -> None:
    input_error(
        lambda: load_table(sql="select * from fishing where 1 = 0", db=fishing_sqlite),
        "no data rows",
    )
    input_error(
        lambda: load_table(sql="select * from german where 1 = 0", db=german_duckdb), "no data rows"
    )


def _random_bytes(n: int) -> bytes:
    data = random.Random(0).randbytes(n)
    assert b"\x00" in data[:8192]
    return data


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("random.csv", _random_bytes(4096), id="random-bytes"),
        pytest.param(
            "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), id="png-named-csv"
        ),
        pytest.param("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), id="png"),
        pytest.param(
            "book.xlsx", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(100), id="xlsx-zip"
        ),
        pytest.param("random.csv.gz", gzip.compress(_random_bytes(4096)), id="gzipped-random"),
    ],
)
def test_binary_file_is_not_a_table(tmp_path: Path, name: str, content: bytes) -> None:
    err = input_error(
        lambda: load_table(write(tmp_path / name, content)), "not a text table", "binary"
    )

    assert "--encoding" in err.hint


def test_undecodable_bytes_without_nul(tmp_path: Path) -> None:
    data = bytes(b or 1 for b in random.Random(1).randbytes(4096))
    path = write(tmp_path / "noise.csv", data)

    err = input_error(lambda: load_table(path), "encoding")

    assert "--encoding" in err.hint


def test_forced_utf8_on_latin1_values(tmp_path: Path, adult: pd.DataFrame) -> None:
    frame = adult.head(200).copy()
    frame.loc[17, "native-country"] = "México"
    path = write(tmp_path / "adult_latin1.csv", csv_text(frame), encoding="latin-1")

    err = input_error(
        lambda: load_table(path, encoding="utf-8"), "native-country", "not valid", "utf-8"
    )

    assert "--encoding" in err.hint
    assert load_table(path).frame.loc[17, "native-country"] == "México"  # detection gets it right


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("nom,caf\xe9,n", id="one-bad-name"),
        pytest.param("caf\xe9,caf\xe8,n", id="names-equal-once-bad-bytes-dropped"),
    ],
)
def test_forced_utf8_on_latin1_header(tmp_path: Path, header: str) -> None:
    path = write(tmp_path / "header_latin1.csv", header + "\n1,2,3\n", encoding="latin-1")

    err = input_error(lambda: load_table(path, encoding="utf-8"), "header", "not valid", "utf-8")

    assert "--encoding" in err.hint


def test_invalid_utf8_after_the_detection_sample(tmp_path: Path) -> None:
    body = b"".join(b"%d,plain\n" % i for i in range(150_000))  # more than the 1 MiB sample
    path = write(tmp_path / "late.csv", b"id,name\n" + body + b"9,Jos\xe9\n")

    input_error(lambda: load_table(path), "name", "not valid", "utf-8")


def test_unknown_encoding_name(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a,b\n1,2\n")

    input_error(
        lambda: load_table(path, encoding="no-such-codec"), "unknown encoding", "no-such-codec"
    )


@pytest.mark.parametrize(
    ("rows", "got", "line"),
    [
        pytest.param(["1,2,3", "4,5,6,7", "8,9,10"], 4, 3, id="too-many"),
        pytest.param(["1,2,3", "4,5,6", "7,8"], 2, 4, id="too-few"),
        pytest.param(['1,"x\ny",3', "4,5,6,7"], 4, 4, id="after-quoted-newline"),
    ],
)
def test_ragged_rows_name_the_line(tmp_path: Path, rows: list[str], got: int, line: int) -> None:
    path = write(tmp_path / "ragged.csv", "a,b,c\n" + "\n".join(rows) + "\n")

    err = input_error(lambda: load_table(path), f"{got} fields", "header has 3", f"line {line}")

    assert "--delimiter" in err.hint


def test_ragged_row_deep_in_real_gzipped_data(tmp_path: Path, adult: pd.DataFrame) -> None:
    lines = csv_text(adult).splitlines()
    lines[1_500] += ",extra"  # line 1,501 of the file (the header is line 1)
    path = write(tmp_path / "adult.csv.gz", gzip.compress(("\n".join(lines) + "\n").encode()))

    input_error(lambda: load_table(path), "16 fields", "header has 15", "line 1501")


@pytest.mark.parametrize(
    ("header", "dupes"),
    [
        pytest.param("age,workclass,age", "'age'", id="one"),
        pytest.param("a,b,a,b,c", "'a', 'b'", id="two"),
    ],
)
def test_duplicate_column_names(tmp_path: Path, header: str, dupes: str) -> None:
    width = header.count(",") + 1
    path = write(tmp_path / "dupes.csv", header + "\n" + ",".join(["1"] * width) + "\n")

    err = input_error(lambda: load_table(path), "duplicate column names", dupes)

    assert "unique" in err.hint


def test_duplicate_column_names_semicolon(tmp_path: Path) -> None:
    path = write(tmp_path / "dupes.csv", "id;x;x\n1;2;3\n4;5;6\n")

    input_error(lambda: load_table(path), "duplicate column names", "'x'")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            b"PAR1" + random.Random(2).randbytes(500) + b"PAR1", id="garbage-between-magic"
        ),
        pytest.param(b"PAR1" + random.Random(3).randbytes(500), id="garbage-after-magic"),
    ],
)
def test_corrupted_parquet(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "broken.parquet", content)

    err = input_error(lambda: load_table(path), "not a readable parquet file")

    assert "corrupted" in err.hint


def test_truncated_real_parquet(tmp_path: Path, adult: pd.DataFrame) -> None:
    whole = tmp_path / "adult.parquet"
    adult.to_parquet(whole, index=False)
    data = whole.read_bytes()
    path = write(tmp_path / "adult_cut.parquet", data[: len(data) // 2])

    err = input_error(lambda: load_table(path), "not a readable parquet file", "adult_cut.parquet")

    assert "truncated" in err.hint


def test_corrupted_parquet_part_in_folder(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    adult.head(100).to_parquet(folder / "part-0.parquet", index=False)
    write(folder / "part-1.parquet", b"PAR1" + bytes(200) + b"PAR1")

    input_error(lambda: load_table(folder), "parquet files", "cannot be read")


def test_parquet_parts_with_different_schemas(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    adult.head(100).to_parquet(folder / "part-0.parquet", index=False)
    pq.write_table(pa.table({"age": ["thirty"] * 5}), folder / "part-1.parquet")

    input_error(lambda: load_table(folder), "cannot be read")


def test_truncated_gzip(tmp_path: Path, adult: pd.DataFrame) -> None:
    data = gzip.compress(csv_text(adult).encode())
    path = write(tmp_path / "adult.csv.gz", data[: len(data) // 3])

    input_error(lambda: load_table(path), "gzip", "cannot be decompressed")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        pytest.param("bad.jsonl", '{"a": 1}\n{"a": \n', ("not valid json lines",), id="jsonl"),
        pytest.param("bad.json", '[{"a": 1},', ("not valid json",), id="json-array"),
    ],
)
def test_invalid_json(tmp_path: Path, name: str, content: str, words: tuple[str, ...]) -> None:
    input_error(lambda: load_table(write(tmp_path / name, content)), *words)


def test_folder_without_data_files(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write(folder / "README.md", "# notes")
    write(folder / "chart.png", b"\x89PNG\r\n\x1a\n")
    write(folder / "_SUCCESS", b"")

    err = input_error(lambda: load_table(folder), "folder with no data files")

    assert ".csv" in err.hint


def test_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()

    input_error(lambda: load_table(folder), "no data files")


def test_folder_mixing_parquet_and_csv(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    adult.head(50).to_parquet(folder / "part-0.parquet", index=False)
    write(folder / "part-1.csv", csv_text(adult.iloc[50:100]))

    err = input_error(lambda: load_table(folder), "mixes parquet", "part-1.csv")

    assert "one format" in err.hint


def test_folder_of_csvs_with_different_headers(tmp_path: Path, adult: pd.DataFrame) -> None:
    folder = tmp_path / "mixed"
    write(folder / "a.csv", csv_text(adult.head(50)))
    write(folder / "b.csv", csv_text(adult.head(50).drop(columns=["fnlwgt"])))

    err = input_error(lambda: load_table(folder), "do not share one header", "b.csv", "a.csv")

    assert "same table" in err.hint


# --------------------------------------------------------------------------- bad input: SQL


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("selec * from german", ("syntax error", "selec")),
        ("select * from german where", ("syntax error",)),
    ],
)
def test_duckdb_syntax_error_lists_tables(
    german_duckdb: Path, sql: str, words: tuple[str, ...]
) -> None:
    err = input_error(lambda: load_table(sql=sql, db=german_duckdb), "query failed", *words)

    assert "fishing" in err.hint and "german" in err.hint


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("selec * from fishing", ("syntax error", "selec")),
        ("select * from fishing where", ("incomplete input",)),
    ],
)
def test_sqlite_syntax_error_lists_tables(
    fishing_sqlite: Path, sql: str, words: tuple[str, ...]
) -> None:
    err = input_error(lambda: load_table(sql=sql, db=fishing_sqlite), "query failed", *words)

    assert not err.message.startswith("the query failed:  ")
    assert "fishing" in err.hint and "german" in err.hint


def test_duckdb_missing_table(german_duckdb: Path) -> None:
    err = input_error(
        lambda: load_table(sql="select * from loans", db=german_duckdb), "query failed", "loans"
    )

    assert "tables in the database" in err.hint and "german" in err.hint


def test_sqlite_missing_table(fishing_sqlite: Path) -> None:
    err = input_error(
        lambda: load_table(sql="select * from loans", db=fishing_sqlite), "no such table", "loans"
    )

    assert "fishing" in err.hint


def test_duckdb_missing_column(german_duckdb: Path) -> None:
    input_error(
        lambda: load_table(sql="select salary from german", db=german_duckdb),
        "query failed",
        "salary",
    )


def test_sql_over_missing_file(tmp_path: Path) -> None:
    err = input_error(
        lambda: load_table(sql=f"select * from '{tmp_path / 'gone.parquet'}'"), "query failed"
    )

    assert "no tables" in err.hint


def test_db_without_sql(fishing_sqlite: Path) -> None:
    err = input_error(lambda: load_table(db=fishing_sqlite), "--db needs a query")

    assert "--sql" in err.hint


@pytest.mark.parametrize("name", ["missing.duckdb", "missing.sqlite"])
def test_database_path_that_does_not_exist(tmp_path: Path, name: str) -> None:
    path = tmp_path / name

    input_error(lambda: load_table(sql="select 1", db=path), "database", "does not exist")

    assert not path.exists()  # nothing was created in its place


def test_db_that_is_not_a_database(tmp_path: Path, adult: pd.DataFrame) -> None:
    path = write(tmp_path / "adult.csv", csv_text(adult.head(10)))

    input_error(lambda: load_table(sql="select 1", db=path), "not a duckdb or sqlite database")


@pytest.mark.parametrize("db", ["german_duckdb", "fishing_sqlite"])
def test_database_given_as_plain_path(request: pytest.FixtureRequest, db: str) -> None:
    path: Path = request.getfixturevalue(db)
    kind = "duckdb" if db == "german_duckdb" else "sqlite"

    err = input_error(lambda: load_table(path), f"is a {kind} database")

    assert "--db" in err.hint and "--sql" in err.hint and str(path) in err.hint


def test_database_with_misleading_suffix(tmp_path: Path, fishing_sqlite: Path) -> None:
    path = write(tmp_path / "fishing.csv", fishing_sqlite.read_bytes())

    err = input_error(lambda: load_table(path), "sqlite database")

    assert "--db" in err.hint
