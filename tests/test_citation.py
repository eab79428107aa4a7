"""The companion is cite-able: CITATION.cff is valid Citation File Format 1.2.0 (checked against
the schema that cffconvert ships, fetched from PyPI at test time, never committed) and agrees
with .zenodo.json, the package's version and the book's bibliography."""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CFF = yaml.safe_load((ROOT / "CITATION.cff").read_text())
ZENODO = json.loads((ROOT / ".zenodo.json").read_text())


@pytest.fixture(scope="module")
def cff_schema(tmp_path_factory):
    where = tmp_path_factory.mktemp("cffconvert")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                          str(where), "cffconvert==2.0.0"], capture_output=True, text=True,
                         timeout=300)
    wheels = list(where.glob("cffconvert-*.whl"))
    if got.returncode or not wheels:
        if os.environ.get("IPTA_REQUIRE_NETWORK"):
            pytest.fail(f"could not fetch cffconvert's CFF schema from PyPI: {got.stderr[-500:]}")
        pytest.skip("PyPI is not reachable: the CFF schema cannot be fetched")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return json.loads(wheel.read("cffconvert/schemas/1.2.0/schema.json"))


def test_citation_cff_is_valid_citation_file_format(cff_schema):
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(cff_schema).iter_errors(CFF), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_preferred_citation_is_the_paper_as_the_book_cites_it():
    paper = CFF["preferred-citation"]
    bib = (ROOT / "book" / "references.bib").read_text()
    entry = bib[bib.index("@inproceedings{liu2026predict"):].split("\n}\n", 1)[0]
    authors = re.search(r"author\s*=\s*\{(.*)\},", entry).group(1).split(" and ")
    cff_authors = [f"{a.get('name-particle', '') + ' ' if 'name-particle' in a else ''}"
                   f"{a['family-names']}, {a['given-names']}" for a in paper["authors"]]
    assert cff_authors == authors
    assert paper["year"] == 2026 and "vVYD74U5KE" in paper["url"]
    assert paper["title"].replace("{I}", "I") == re.search(r"title\s*=\s*\{(.*)\},",
                                                           entry).group(1).replace("{I}", "I")


def test_zenodo_metadata_and_version_agree_with_the_package():
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert CFF["version"] == ZENODO["version"] == version
    assert ZENODO["title"] == CFF["title"] and ZENODO["license"] == CFF["license"] == "MIT"
    assert ZENODO["upload_type"] == "software"
    assert {r["relation"] for r in ZENODO["related_identifiers"]} == {"isSupplementTo"}
