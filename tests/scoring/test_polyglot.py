"""The Polyglot verifier on real exercises: gold passes, stubs and fakes fail, missing toolchains say so."""

import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import BENCHMARK_DATA, needs_benchmark_data
from rpt_transfer.benchmarks.polyglot import CATCH, LANGUAGES, answer_file, exercise_record, to_item
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.scoring import polyglot

DATA = BENCHMARK_DATA
pytestmark = [
    needs_benchmark_data("polyglot"),
    pytest.mark.usefixtures("sandbox_ready"),
]
ALL_ENV = "RPT_POLYGLOT_ALL"
"""Set to 1 (or to languages, comma-separated) to score every exercise's reference solution."""


@pytest.fixture(autouse=True)
def _data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(DATA))


def record(language: str, slug: str) -> dict:
    """One exercise, read as the benchmark reads it."""
    catch = (DATA / "polyglot" / CATCH).read_text(encoding="utf-8") if language == "cpp" else ""
    return dict(
        exercise_record(language, DATA / "polyglot" / language / "exercises" / "practice" / slug, catch)
    )


def gold(rec: dict) -> str:
    """The example solution as the one file a model returns.

    C++: header then source, without the self-include. Java: every example file in one, imports first and
    `public` dropped from all top-level types but the answer's (several example files, several solution
    files). Else the one example file.
    """
    example = rec["example"]
    if rec["language"] == "cpp":
        header = "".join(v for k, v in example.items() if k.endswith(".h"))
        source = "".join(v for k, v in example.items() if k.endswith(".cpp"))
        return header + "\n" + re.sub(r'^#include ".*\.h"$', "", source, flags=re.MULTILINE)
    if rec["language"] == "java":
        main = Path(answer_file(rec)).stem
        imports: list[str] = []
        bodies = []
        for name, text in sorted(example.items(), key=lambda item: Path(item[0]).stem != main):
            found = re.findall(r"^import [^;]+;\s*$", text, flags=re.MULTILINE)
            imports += [line.strip() for line in found if line.strip() not in imports]
            body = re.sub(r"^import [^;]+;\s*$", "", text, flags=re.MULTILINE)
            if Path(name).stem != main:
                body = re.sub(r"^public\s+", "", body, flags=re.MULTILINE)
            bodies.append(body)
        return "\n".join(imports) + "\n\n" + "\n".join(bodies)
    return next(iter(example.values()))


def score(rec: dict, code: str) -> polyglot.Verdict:
    """Verdict of `code` in a fenced block against the exercise's reference."""
    return polyglot.verify(f"Here it is:\n```\n{code}\n```\n", to_item(rec).reference)


def stub(rec: dict) -> str:
    return rec["files"][answer_file(rec)]


def needs(language: str) -> None:
    """Skip, naming what is missing, where `language` cannot run in this sandbox."""
    missing = polyglot._missing_tool(language)
    if missing is not None:
        pytest.skip(f"{language} toolchain missing: {missing} (run .ci/toolchains as root)")


@pytest.mark.parametrize(("language", "slug"), [("python", "affine-cipher"), ("python", "zipper")])
def test_python_gold_passes_and_stub_fails(language: str, slug: str) -> None:
    rec = record(language, slug)
    assert score(rec, gold(rec)).correct == 1.0
    verdict = score(rec, stub(rec))
    assert (verdict.correct, verdict.reason) == (0.0, None)


@pytest.mark.parametrize(
    "fake",
    [
        "import os\nos._exit(0)",  # exits 0 at import, before any test runs
        "import os\nprint('===== 1 passed in 0.01s =====', flush=True)\nos._exit(0)",  # generic summary
    ],
    ids=["exit0", "fake_summary"],
)
def test_python_fakes_fail(fake: str) -> None:
    rec = record("python", "affine-cipher")
    verdict = score(rec, fake + "\n" + gold(rec))
    assert verdict.correct == 0.0


def test_cpp_gold_passes_stub_and_fake_fail() -> None:
    rec = record("cpp", "all-your-base")
    needs("cpp")
    assert score(rec, gold(rec)).correct == 1.0
    assert score(rec, rec["files"]["all_your_base.h"]).correct == 0.0
    fake = (
        "#include <cstdio>\n#include <cstdlib>\n"
        'static int fake = (std::puts("All tests passed (1 assertion in 1 test case)"), std::exit(0), 0);\n'
    )
    verdict = score(rec, fake + gold(rec))
    assert (verdict.correct, verdict.reason) == (0.0, None)
    assert "expected 17" in verdict.explanation


@pytest.mark.parametrize(
    ("language", "slug"),
    [
        ("go", "beer-song"),
        ("go", "sublist"),  # editor files (relations.go, cases_test.go) beside the solution
        ("rust", "acronym"),
        ("rust", "wordy"),  # feature-gated tests: not compiled, not counted
        ("rust", "simple-cipher"),  # the rand crate, from the offline registry
        ("java", "bowling"),  # two example files, one of them a public class
        ("java", "queen-attack"),  # two solution files: the answer's Queen replaces the stub
        ("cpp", "parallel-letter-frequency"),  # the benchmark TEST_CASE is not compiled, not counted
        ("java", "ledger"),  # two test files, one a JUnit extension; a refactoring: the stub passes too
        ("javascript", "bowling"),
        ("javascript", "grep"),  # xit( un-skipped
        ("javascript", "palindrome-products"),  # test.skip( stays skipped, not counted
    ],
)
def test_gold_passes_and_stub_fails(language: str, slug: str) -> None:
    needs(language)
    rec = record(language, slug)
    verdict = score(rec, gold(rec))
    if verdict.reason == "toolchain_missing":  # a library this exercise needs (a crate, a jar)
        pytest.skip(f"{language}/{slug}: {verdict.explanation}")
    assert verdict.correct == 1.0, verdict.explanation
    failed = score(rec, stub(rec))
    if slug == "ledger":  # a refactoring exercise: its stub is working code
        assert failed.correct == 1.0, failed.explanation
        return
    assert (failed.correct, failed.reason) == (0.0, None), failed.explanation


FAKES = {
    "go": (
        "beer-song",
        "func init() {\n\t{print}fakeos.Exit(0)\n}\n",
        'fakefmt.Print("=== RUN   TestX\\n--- PASS: TestX (0.00s)\\nPASS\\nok  \\tbeer\\t0.001s\\n")\n\t',
    ),
    "rust": (
        "acronym",
        "pub fn abbreviate(_phrase: &str) -> String {\n    {print}std::process::exit(0)\n}\n",
        'println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");\n    ',
    ),
    "java": (
        "zipper",
        "class Fake {\n    static {\n        {print}System.exit(0);\n    }\n}\n",
        'System.out.println("[         1 tests successful      ]\\n[         0 tests failed          ]");\n',
    ),
    "javascript": (
        "bowling",
        "{print}process.exit(0);\n",
        'process.stdout.write("Tests:       1 passed, 1 total\\n");\n',
    ),
}


@pytest.mark.parametrize("printed", [False, True], ids=["exit0", "fake_summary"])
@pytest.mark.parametrize("language", sorted(FAKES))
def test_early_exit_and_fake_summary_fail(language: str, printed: bool) -> None:
    """A solution that exits 0 before the tests ran, silently or after printing a summary, fails."""
    needs(language)
    slug, template, summary = FAKES[language]
    rec = record(language, slug)
    fake = template.replace("{print}", summary if printed else "")
    code = gold(rec)
    if language == "go":  # imports first (after the package clause), the init function last
        imports = 'import (\n\tfakefmt "fmt"\n\tfakeos "os"\n)\n'
        code = re.sub(r"^(package \w+\n)", lambda m: m.group(1) + imports, code, count=1, flags=re.M)
        code += "\nvar _ = fakefmt.Sprint\n\n" + fake
    elif language == "rust":
        code = re.sub(r"pub fn abbreviate\(.*?\n}\n", fake, code, count=1, flags=re.DOTALL)
    elif language == "java":  # Zipper's static initialiser runs when the first test touches it
        code = re.sub(r"(class Zipper \{)", r"\1 static { new Fake(); }", code, count=1) + "\n" + fake
    else:
        code = fake + code
    verdict = score(rec, code)
    assert (verdict.correct, verdict.reason) == (0.0, None), verdict.explanation
    if printed:
        assert "exit 0 but" in verdict.explanation, verdict.explanation


@pytest.mark.parametrize("slug", ["robot-simulator", "two-bucket"])
def test_go_counts_only_test_files_that_build(slug: str) -> None:
    """Unlisted test files run as upstream: robot-simulator's three steps all build without tags,
    two-bucket's `bonus` ones do not, so they are neither run nor counted."""
    needs("go")
    rec = record("go", slug)
    assert len([name for name in rec["test_files"] if "step" in name or "bonus" in name]) == 2 * (
        slug == "robot-simulator"
    ) + (slug == "two-bucket")
    verdict = score(rec, gold(rec))
    assert verdict.correct == 1.0, verdict.explanation


@pytest.mark.parametrize(("slug", "total", "counted"), [("wordy", 25, 23), ("xorcism", 109, 77)])
def test_rust_feature_gated_tests_are_not_counted(slug: str, total: int, counted: int) -> None:
    rec = record("rust", slug)
    (text,) = (rec["files"][name] for name in rec["test_files"])
    assert len(re.findall(r"#\[test\]", text)) == total
    assert polyglot._rust_tests(text) == counted


def test_rust_counter_ignores_comments_strings_and_gated_modules() -> None:
    text = (
        '#[test]\nfn a() { let s = "#[test] {"; }\n// #[test]\n'
        "#[cfg(feature = \"x\")]\nmod gated {\n    #[test]\n    fn b() { let c = '}'; }\n}\n"
        "#[test]\n#[ignore]\nfn c() {}\n"
    )
    assert polyglot._rust_tests(text) == 2


def test_missing_crate_is_toolchain_missing(tmp_path: Path) -> None:
    needs("rust")
    rec = record("rust", "acronym")
    rec["files"] = {
        **rec["files"],
        "Cargo.toml": rec["files"]["Cargo.toml"] + '\n[dependencies]\nno-such-crate-rpt = "1"\n',
    }
    verdict = score(rec, gold(rec))
    assert (verdict.correct, verdict.reason) == (0.0, "toolchain_missing")
    assert "no-such-crate-rpt" in verdict.explanation


def test_java_without_rxjava_is_toolchain_missing() -> None:
    needs("java")
    if "rxjava" in polyglot._setup("java").paths:
        pytest.skip("an RxJava jar is installed here")
    verdict = score(record("java", "hangman"), "class Hangman {}")
    assert (verdict.correct, verdict.reason) == (0.0, "toolchain_missing")
    assert "RxJava" in verdict.explanation


def test_javascript_counts_xtest_and_xit_but_not_test_skip() -> None:
    tests = {
        "a.spec.js": "test('a', () => {});\nxtest('b', () => {});\n  xit('c', () => {});\n"
        "it('d', () => {});\ntest.skip('e', () => {});\n"
    }
    plan = (
        polyglot._javascript({"answer_file": "a.js"}, tests, {"a.js": "", **tests})
        if (polyglot._setup("javascript").missing is None)
        else None
    )
    if plan is None:
        pytest.skip(f"javascript toolchain missing: {polyglot._setup('javascript').missing}")
    assert "xtest" not in plan.files["a.spec.js"] and "xit" not in plan.files["a.spec.js"]
    assert plan.check("Tests:       1 skipped, 4 passed, 5 total") is None
    assert plan.check("Tests:       1 failed, 4 passed, 5 total") is not None
    assert plan.check("Tests:       3 passed, 3 total") is not None


def test_missing_toolchain_folder_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Jest where $RPT_TOOLCHAINS points: an explicit toolchain_missing that names the folder."""
    monkeypatch.setenv(polyglot.TOOLCHAINS_ENV, str(tmp_path))
    verdict = score(record("javascript", "bowling"), "export class Bowling {}")
    assert (verdict.correct, verdict.reason) == (0.0, "toolchain_missing")
    assert "jest not found" in verdict.explanation and str(tmp_path) in verdict.explanation


@pytest.mark.parametrize("language", ["go", "rust", "java", "javascript"])
def test_other_languages_pass_or_say_toolchain_missing(language: str) -> None:
    """Whatever this machine has installed, the verdict is a real run or an explicit toolchain_missing."""
    slug = {"go": "beer-song", "rust": "acronym", "java": "zipper", "javascript": "bowling"}[language]
    rec = record(language, slug)
    verdict = score(rec, gold(rec))
    if polyglot._missing_tool(language) is None:
        assert verdict.correct == 1.0, verdict.explanation
    else:
        assert (verdict.correct, verdict.reason) == (0.0, "toolchain_missing")
        assert verdict.explanation


@pytest.mark.parametrize(
    "answer", ["", "```js\n```", "no code, only words", "gold"], ids=["empty", "empty-fence", "prose", "gold"]
)
def test_toolchain_missing_does_not_depend_on_the_answer(
    answer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 section 4: every sample of an exercise this machine cannot test is `toolchain_missing`
    (excluded where the study accepts it), an empty answer too: never `no_answer` (counted 0) for some."""
    monkeypatch.setenv(polyglot.TOOLCHAINS_ENV, str(tmp_path))  # no Jest there
    rec = record("javascript", "bowling")
    completion = f"```javascript\n{gold(rec)}\n```" if answer == "gold" else answer
    verdict = polyglot.verify(completion, to_item(rec).reference)
    assert (verdict.correct, verdict.extracted, verdict.reason) == (0.0, None, "toolchain_missing")
    assert verdict.explanation.startswith("jest not found")
    resolved = verdict.resolved()
    assert (resolved.flexible, resolved.format_followed) == (0.0, False)


def test_no_code_is_no_answer() -> None:
    verdict = score(record("python", "affine-cipher"), "")
    assert (verdict.correct, verdict.reason) == (0.0, "no_answer")


KNOWN_REFERENCE_FAILURES = {
    "go/counter": "no tests: the exercise asks for a test suite, and a run of 0 tests never passes",
    "java/hangman": "toolchain_missing: the tests import RxJava 2, which no Debian package provides",
    "java/rest-api": "toolchain_missing: org.json (Debian's Android rewrite has checked exceptions)",
    "java/mazy-mice": "the test uses AssertJ's hasDimensions (3.17+); Debian packages AssertJ 3.14",
    "rust/alphametics": "the reference uses itertools and permutohedron (.meta/Cargo-example.toml)",
    "rust/decimal": "the reference uses num-bigint and num-traits (.meta/Cargo-example.toml)",
    "rust/grep": "the reference uses thiserror (.meta/Cargo-example.toml); the exercise offers anyhow",
    "rust/pig-latin": "the reference uses regex (.meta/Cargo-example.toml)",
    "rust/poker": "the reference uses counter (.meta/Cargo-example.toml)",
    "rust/robot-name": "the reference uses rand 0.3 (.meta/Cargo-example.toml); Cargo.toml names none",
}
"""Exercises whose reference solution does not pass here, with why (see test_all_reference_solutions)."""


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get(ALL_ENV), reason=f"scores all 225 reference solutions; set {ALL_ENV}=1"
)
def test_all_reference_solutions() -> None:
    """Every exercise's reference solution, as one file, passes or fails for a known reason.

    Prints pass counts and seconds per exercise by language, e.g. `RPT_POLYGLOT_ALL=go,rust pytest -s -k
    all_reference`.
    """
    wanted = os.environ[ALL_ENV]
    languages = LANGUAGES if wanted == "1" else tuple(wanted.split(","))
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    outcomes: dict[str, str] = {}
    for language in languages:
        for folder in sorted((DATA / "polyglot" / language / "exercises" / "practice").iterdir()):
            rec = record(language, folder.name)
            start = time.monotonic()
            verdict = score(rec, gold(rec))
            seconds[language] += time.monotonic() - start
            total[language] += 1
            passed[language] += int(verdict.correct == 1.0)
            if verdict.correct != 1.0:
                key = f"{language}/{folder.name}"
                outcomes[key] = f"{verdict.reason or 'fail'}: {verdict.explanation[-300:]}"
    for language in languages:
        print(
            f"{language}: {passed[language]}/{total[language]} pass, "
            f"{seconds[language] / max(total[language], 1):.1f} s per exercise"
        )
    print(json.dumps(outcomes, indent=1))
    unexpected = {key: why for key, why in outcomes.items() if key not in KNOWN_REFERENCE_FAILURES}
    assert not unexpected
