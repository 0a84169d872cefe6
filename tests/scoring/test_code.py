"""Code verifiers: extraction, comparison, verdicts, and the ways a program might fake a pass."""

import json
from collections import Counter, OrderedDict, defaultdict, deque
from decimal import Decimal
from fractions import Fraction

import pytest

from rpt_transfer.scoring import code, code_harness
from rpt_transfer.scoring.code import (
    function_reference,
    outputs_match,
    solution_reference,
    stdio_reference,
    verify_function,
    verify_stdio,
)
from rpt_transfer.scoring.code_extract import extract_code

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TESTS = (
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n"
)
ADD = function_reference("add", TESTS, prompt=PROMPT, context=PROMPT)
UNITTEST = (
    "import unittest\n"
    "class TestCases(unittest.TestCase):\n"
    "    def test_two(self):\n        self.assertEqual(task_func(2), 4)\n"
    "    def test_three(self):\n        self.assertEqual(task_func(3), 9)\n"
)
SQUARE = function_reference("task_func", UNITTEST, mode="unittest")
SUM = stdio_reference([{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6"}])
TWO_SUM = solution_reference("twoSum", [([[2, 7, 11, 15], 9], [0, 1]), ([[3, 2, 4], 6], [1, 2])], timeout=5)
TWO_SUM_RIGHT = (
    "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
    "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
    "                return (seen[target - x], i)\n            seen[x] = i"
)


pytestmark = pytest.mark.usefixtures("sandbox_ready")  # skips with the sandbox's reason where it cannot run


def fenced(program: str) -> str:
    return f"Here is my solution.\n```python\n{program}\n```\n"


@pytest.mark.parametrize(
    ("completion", "program"),
    [
        ("```python\nx = 1\n```\nthen\n```\ny = 2\n```", "y = 2"),
        ("```py\na\n```", "a"),
        ("    return 1\n\n", "    return 1"),
        ("text\n```python\nunfinished = True\n", "unfinished = True"),
        ("<think>```\nnot this\n```</think>```\nthis\n```", "this"),
        ("````markdown\n```python\ninner\n```\n````", "```python\ninner\n```"),
        ("no code at all", "no code at all"),
        ("```\n```", ""),
    ],
)
def test_extract_code(completion: str, program: str) -> None:
    assert extract_code(completion) == program


@pytest.mark.parametrize(
    ("got", "expected", "tolerance", "match"),
    [
        ("5\n", "5", None, True),
        ("1 2\n3\n", "1 2 3", None, True),
        ("  1\t2  ", "1 2", None, True),
        ("25", "5", None, False),
        ("5", "5 6", None, False),
        ("YES", "yes", None, False),
        ("0.3333333", "0.333333333333", None, False),
        ("0.3333333", "0.333333333333", 1e-6, True),
        ("1000001", "1000000", 1e-6, True),
        ("1000003", "1000000", 1e-6, False),
        ("nan", "0.5", 1e-6, False),
        ("inf", "1e400", 1e-6, False),
        ("1_000", "1000", 1e-6, False),
        ("-2.5e-3", "-0.0025", 1e-9, True),
        ("", "", None, True),
    ],
)
def test_outputs_match(got: str, expected: str, tolerance: float | None, match: bool) -> None:
    assert outputs_match(got, expected, tolerance) is match


@pytest.mark.parametrize(
    ("completion", "correct", "reason"),
    [
        ("    return a + b\n", 1.0, None),
        (fenced("def add(a, b):\n    return a + b"), 1.0, None),
        (fenced("from operator import add"), 1.0, None),
        ("    return a - b\n", 0.0, None),
        ("", 0.0, "no_answer"),
        ("```python\n\n```", 0.0, "no_answer"),
        ("    return (\n", 0.0, "parse_error"),
        ("x" * (code.MAX_COMPLETION_CHARS + 1), 0.0, "parse_error"),
        (b"\xff\xfe\x00binary", 0.0, "parse_error"),
        ("    return a + b  # \ud800", 0.0, "parse_error"),
        ("    return a + b\x00\n", 0.0, "parse_error"),
    ],
)
def test_function_verdicts(completion: str, correct: float, reason: str | None) -> None:
    verdict = verify_function(completion, ADD)
    assert (verdict.correct, verdict.reason) == (correct, reason), verdict.explanation


def test_function_timeout_keeps_program_and_stderr() -> None:
    completion = (
        "    import sys\n    print('looping', file=sys.stderr, flush=True)\n    while True:\n        pass\n"
    )
    verdict = verify_function(completion, ADD, timeout=1)
    assert (verdict.correct, verdict.reason) == (0.0, "timeout")
    assert "while True" in verdict.explanation and "looping" in verdict.explanation


def test_function_failure_names_the_assertion() -> None:
    verdict = verify_function("    return a * b\n", ADD)
    assert verdict.correct == 0 and "assert candidate(1, 2) == 3" in verdict.explanation


def test_plain_data_crosses_both_ways() -> None:
    values = [
        None,
        True,
        3,
        2**200,
        -0.5,
        float("inf"),
        1j,
        "é",
        b"\x00",
        [1, (2, 3)],
        {1: {"a": frozenset({4})}},
    ]
    values += [{5}, Counter("abca"), OrderedDict(b=1), defaultdict(None, a=[]), deque([1]), Decimal("1.10")]
    values += [Fraction(1, 3)]
    test = "from collections import *\nfrom decimal import Decimal\nfrom fractions import Fraction\n"
    test += (
        f"for value in {values!r}:\n    assert echo(value) == value and type(echo(value)) is type(value)\n"
    )
    reference = function_reference("echo", test.replace("inf", "float('inf')"))
    assert verify_function("def echo(x):\n    return x\n", reference).correct == 1.0


def test_exceptions_come_back_as_the_same_builtin_type() -> None:
    test = "try:\n    f(-1)\nexcept ValueError as err:\n    assert 'negative' in str(err)\nelse:\n    raise AssertionError\n"
    reference = function_reference("f", test)
    assert verify_function("def f(x):\n    raise ValueError('negative')\n", reference).correct == 1.0


# Programs that try to pass without adding. Each must score 0.
FUNCTION_EXPLOITS = {
    "exit_before_tests": "import sys\nsys.exit(0)",
    "os_exit_before_tests": "import os\nos._exit(0)",
    "print_passed": "print('PASSED')\nprint('OK')\nprint(json.dumps({'passed': True}))\nimport os\nos._exit(0)",
    "redefine_check": "def check(candidate):\n    pass\n\ndef add(a, b):\n    return 0",
    "patch_builtins": (
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "builtins.__build_class__ = None\nbuiltins.print = None\ndef add(a, b):\n    return 0"
    ),
    "always_equal": (
        "class Equal:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
        "        return False\n    __hash__ = object.__hash__\n\ndef add(a, b):\n    return Equal()"
    ),
    "int_subclass_always_equal": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Int(0)"
    ),
    "system_exit_in_call": "def add(a, b):\n    raise SystemExit(0)",
    "keyboard_interrupt_in_call": "def add(a, b):\n    raise KeyboardInterrupt",
    "os_exit_in_call": "import os\ndef add(a, b):\n    os._exit(0)",
    "forged_verdict_on_every_fd": (
        "import json, os\nfor fd in range(0, 64):\n    try:\n"
        "        os.write(fd, json.dumps({'passed': True, 'nonce': '0' * 32}).encode())\n"
        "    except OSError:\n        pass\n\ndef add(a, b):\n    return 0"
    ),
    "steal_nonce_from_stdin": (
        "import os, sys\ndata = sys.stdin.read()\nos.write(3, data.encode())\n\ndef add(a, b):\n    return 0"
    ),
    "read_or_write_the_runner": (
        "import os\nfor path in ('/proc/1/mem', '/proc/1/fd/0', '/proc/1/environ', f'/proc/{os.getppid()}/fd/3'):\n"
        "    try:\n        open(path, 'r+b').write(b'{\"passed\": true}')\n    except OSError:\n        pass\n"
        "def add(a, b):\n    return 0"
    ),
    "kill_the_runner": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\ndef add(a, b):\n    return 0",
    "ptrace_the_runner": (
        "import ctypes, os\nlibc = ctypes.CDLL(None)\nlibc.ptrace(16, os.getppid(), 0, 0)\n"
        "def add(a, b):\n    return 0"
    ),
    "late_thread_forges": (
        "import json, os, threading, time\ndef forge():\n    time.sleep(0.05)\n    for fd in range(64):\n"
        "        try:\n            os.write(fd, b'{\"passed\": true}')\n        except OSError:\n            pass\n"
        "threading.Thread(target=forge, daemon=True).start()\ndef add(a, b):\n    return 0"
    ),
    "patch_json_and_os": (
        "import json, os\njson.loads = lambda *a, **k: {'passed': True}\nos._exit = lambda *a: None\n"
        "def add(a, b):\n    return 0"
    ),
    "return_a_function": "def add(a, b):\n    return lambda *x: 3",
    "return_a_generator": "def add(a, b):\n    yield a + b",
    "correct_then_crash_on_import": "def add(a, b):\n    return a + b\nraise SystemExit(0)",
    "look_for_the_tests_on_disk": (
        "import os\nfound = [os.path.join(d, f) for d, _, fs in os.walk('/') for f in fs if 'test' in f][:5]\n"
        "def add(a, b):\n    return 0"
    ),
}


@pytest.mark.parametrize("name", sorted(FUNCTION_EXPLOITS))
def test_function_exploits_fail(name: str) -> None:
    verdict = verify_function(fenced(FUNCTION_EXPLOITS[name]), ADD, timeout=5)
    assert verdict.correct == 0.0, verdict


def test_solution_reference_calls_the_method_and_compares_json() -> None:
    assert verify_stdio(fenced(TWO_SUM_RIGHT), TWO_SUM).correct == 1.0  # a tuple counts as a list
    assert verify_function(fenced(TWO_SUM_RIGHT), TWO_SUM).correct == 1.0  # either verifier routes it
    wrong = verify_stdio(fenced(TWO_SUM_RIGHT.replace("seen[target - x], i", "i, seen[target - x]")), TWO_SUM)
    assert (
        wrong.correct == 0.0 and "test 1: twoSum(...) returned [1, 0], expected [0, 1]" in wrong.explanation
    )
    assert verify_stdio(fenced("class Solution:\n    pass"), TWO_SUM).correct == 0.0
    slow = fenced(
        "class Solution:\n    def twoSum(self, nums, target):\n        while True:\n            pass"
    )
    assert verify_stdio(slow, TWO_SUM).reason == "timeout"


def test_solution_prelude_keeps_builtins() -> None:
    reference = solution_reference("f", [([3, 4], [81 % 5, 4, 2.0, True])], timeout=5)
    program = "class Solution:\n    def f(self, x, y):\n        return [pow(x, y, 5), abs(-y), sqrt(y), x in Counter([3])]"
    assert verify_stdio(fenced(program), reference).correct == 1.0


def test_solution_reference_fields() -> None:
    spec = json.loads(TWO_SUM)
    assert (spec["mode"], spec["timeout"], spec["prompt"]) == ("call", 5, code.SOLUTION_PRELUDE)
    assert "Solution().twoSum(*args)" in spec["suffix"] and "timeout" not in json.loads(ADD)
    with pytest.raises(ValueError, match="not a Python name"):
        solution_reference("two sum", [], timeout=1)


SOLUTION_EXPLOITS = {
    name: program.replace("def add(a, b):", "class Solution:\n  def twoSum(self, nums, target):")
    for name, program in FUNCTION_EXPLOITS.items()
    if "def add(" in program
}
SOLUTION_EXPLOITS |= {
    "define_the_shim": "def _call_solution(*args):\n    return [0, 1]\nclass Solution:\n    pass",
    "list_subclass": (
        "class Same(list):\n    def __eq__(self, other):\n        return True\n"
        "class Solution:\n    def twoSum(self, nums, target):\n        return Same()"
    ),
    "exit_at_import": "import sys\nsys.exit(0)",
}


@pytest.mark.parametrize("name", sorted(SOLUTION_EXPLOITS))
def test_solution_exploits_fail(name: str) -> None:
    verdict = verify_stdio(fenced(SOLUTION_EXPLOITS[name]), TWO_SUM)
    assert verdict.correct == 0.0, verdict


def test_unittest_mode_passes_and_fails() -> None:
    assert verify_function(fenced("def task_func(x):\n    return x * x"), SQUARE).correct == 1.0
    wrong = verify_function(fenced("def task_func(x):\n    return x + x"), SQUARE)
    assert wrong.correct == 0.0 and "1/2 tests passed" in wrong.explanation


UNITTEST_EXPLOITS = {
    "exit_before_tests": "import sys\nsys.exit(0)",
    "os_exit_before_tests": "import os\nos._exit(0)",
    "os_exit_in_test": "import os\ndef task_func(x):\n    os._exit(0)",
    "system_exit_in_test": "def task_func(x):\n    raise SystemExit(0)",
    "keyboard_interrupt_in_test": "def task_func(x):\n    raise KeyboardInterrupt",
    "skip_every_test": "import unittest\ndef task_func(x):\n    raise unittest.SkipTest('later')",
    "patch_assert_equal": (
        "import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\ndef task_func(x):\n    return 0"
    ),
    "patch_result": (
        "import unittest\nunittest.TestResult.addFailure = lambda *a: None\n"
        "unittest.TestResult.addError = lambda *a: None\ndef task_func(x):\n    return 0"
    ),
    "fake_unittest_module": (
        "import sys, types\nfake = types.ModuleType('unittest')\nfake.TestCase = object\n"
        "sys.modules['unittest'] = fake\ndef task_func(x):\n    return 0"
    ),
    "patch_builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\ndef task_func(x):\n    return 0",
    "define_test_cases_first": (
        "import unittest\nclass TestCases(unittest.TestCase):\n    def test_two(self):\n        pass\n"
        "    def test_three(self):\n        pass\ndef task_func(x):\n    return 0"
    ),
    "always_equal": (
        "class Equal:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
        "        return False\ndef task_func(x):\n    return Equal()"
    ),
}


@pytest.mark.parametrize("name", sorted(UNITTEST_EXPLOITS))
def test_unittest_exploits_fail(name: str) -> None:
    verdict = verify_function(fenced(UNITTEST_EXPLOITS[name]), SQUARE, timeout=20)
    assert verdict.correct == 0.0, verdict


def test_unittest_reference_without_tests_is_not_a_pass() -> None:
    reference = function_reference("task_func", "import unittest\n", mode="unittest")
    assert verify_function(fenced("def task_func(x):\n    return x"), reference).correct == 0.0


@pytest.mark.parametrize(
    ("program", "correct", "reason"),
    [
        ("a, b = map(int, input().split())\nprint(a + b)", 1.0, None),
        ("import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b, end='   \\n\\n')", 1.0, None),
        ("a, b = map(int, input().split())\nprint(a - b)", 0.0, None),
        ("print(5)", 0.0, None),
        ("import sys\nsys.exit(0)", 0.0, None),
        ("raise RuntimeError('crash')", 0.0, None),
        ("print(5", 0.0, "parse_error"),
        ("while True:\n    pass", 0.0, "timeout"),
        ("", 0.0, "no_answer"),
    ],
)
def test_stdio_verdicts(program: str, correct: float, reason: str | None) -> None:
    verdict = verify_stdio(fenced(program) if program else "", SUM, timeout=2)
    assert (verdict.correct, verdict.reason) == (correct, reason), verdict.explanation


def test_stdio_explains_a_wrong_answer() -> None:
    verdict = verify_stdio(fenced("print(5)"), SUM)
    assert "test 2/2: wrong answer" in verdict.explanation and "expected:\n6" in verdict.explanation


def test_stdio_float_tolerance_comes_from_the_reference() -> None:
    program = fenced("print(1 / 3)")
    strict = stdio_reference([{"input": "", "output": "0.333333"}])
    lenient = stdio_reference([{"input": "", "output": "0.333333"}], float_tolerance=1e-6)
    assert (verify_stdio(program, strict).correct, verify_stdio(program, lenient).correct) == (0.0, 1.0)


def test_stdio_expected_output_never_reaches_the_program() -> None:
    secret = "expected-output-1234"
    reference = stdio_reference([{"input": "x\n", "output": secret}])
    program = "import os\nfor d, _, fs in os.walk('/tmp'):\n    for f in fs:\n        print(open(os.path.join(d, f)).read())"
    verdict = verify_stdio(fenced(program), reference)
    assert verdict.correct == 0.0 and secret not in verdict.explanation.split("got:")[-1]


def test_references_are_plain_json() -> None:
    reference = json.loads(ADD)
    assert reference["mode"] == "call" and reference["entry_point"] == "add" and reference["site"] is False
    assert json.loads(SQUARE)["site"] is True
    with pytest.raises(ValueError, match="mode"):
        function_reference("f", "", mode="pytest")


def test_harness_is_standalone() -> None:
    source = code_harness.harness_source()
    compile(source, "harness.py", "exec")
    assert "rpt_transfer" not in source.split('"""', 2)[2]


@pytest.mark.parametrize(
    ("test", "correct", "shown"),
    [
        ("assert f(1) == 2\n", 1.0, ""),
        ("assert f(1) == 3, 'one more'\n", 0.0, "AssertionError: one more"),
        ("assert f(1) ==\n", 0.0, "SyntaxError"),  # not compiled on the host: the run reports it
        ("import sys\nsys.exit(0)\nassert f(1) == 3\n", 0.0, "SystemExit"),
    ],
)
def test_tests_compiled_once_on_the_host_keep_their_meaning(test: str, correct: float, shown: str) -> None:
    reference = function_reference("f", test)
    for _ in range(2):  # the second run uses the cached, compiled tests
        verdict = verify_function("def f(x):\n    return x + 1\n", reference)
        assert verdict.correct == correct and shown in verdict.explanation, verdict.explanation


def test_tests_compiled_on_the_host_postpone_annotations_as_the_runner_did() -> None:
    context = "def helper(x: NotDefinedAnywhere) -> int:\n    return x\n"
    reference = function_reference("f", "assert f(helper(1)) == 2\n", context=context)
    assert verify_function("def f(x):\n    return x + 1\n", reference).correct == 1.0


@pytest.mark.parametrize("where", ["call", "load"])
def test_a_candidate_ended_by_its_cpu_limit_timed_out(where: str) -> None:
    """The CPU-time limit (1 s here) ends a busy candidate before the wall clock (10 s): still a timeout.

    With both at 5 s, which came first was a race, and a lost one read as a wrong answer."""
    from rpt_transfer.scoring import sandbox

    loop = "while True:\n    pass"
    program = f"def add(a, b):\n    {loop.replace(chr(10), chr(10) + '    ')}" if where == "call" else loop
    limits = sandbox.Limits(cpu_seconds=1, memory_bytes=code.MEMORY_BYTES)
    verdict = verify_function(fenced(program), ADD, timeout=10, limits=limits)
    assert (verdict.correct, verdict.reason) == (0.0, "timeout"), verdict.explanation[:500]
