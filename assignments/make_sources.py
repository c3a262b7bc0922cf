"""Writes the PY4E course's nbgrader source notebooks (and ps06's data file) under source/.

Run from anywhere: ``python assignments/make_sources.py``. The generated files are
committed; edit this script, re-run it, and commit both.
"""

import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SOURCE = Path(__file__).resolve().parent / "source"


class Notebook:
    """An nbgrader source notebook built cell by cell; grade ids are checked for uniqueness."""

    def __init__(self, name, title, intro):
        self.name = name
        self.title = title
        self.intro = intro
        self.cells = []
        self.ids = set()
        self.auto_points = 0
        self.manual_points = 0

    def _meta(self, grade_id, *, grade=False, solution=False, locked=False, points=None):
        assert grade_id not in self.ids, grade_id
        self.ids.add(grade_id)
        meta = {
            "grade": grade,
            "grade_id": grade_id,
            "locked": locked,
            "schema_version": 3,
            "solution": solution,
            "task": False,
        }
        if points is not None:
            meta["points"] = points
        return {"nbgrader": meta}

    def text(self, grade_id, source):
        """Read-only explanation."""
        cell = new_markdown_cell(source.strip(), metadata=self._meta(grade_id, locked=True))
        self.cells.append(cell)

    def example(self, grade_id, source):
        """Read-only example code the learner can run."""
        cell = new_code_cell(source.strip(), metadata=self._meta(grade_id, locked=True))
        self.cells.append(cell)

    def answer(self, grade_id, source):
        """Autograded answer cell: the part between the solution markers is cleared on release."""
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, grade_id
        cell = new_code_cell(source.strip(), metadata=self._meta(grade_id, solution=True))
        self.cells.append(cell)

    def tests(self, grade_id, points, visible, hidden):
        """Locked autograder tests: visible asserts, then hidden ones removed from the release."""
        source = (
            visible.strip()
            + "\n\n### BEGIN HIDDEN TESTS\n"
            + hidden.strip()
            + "\n### END HIDDEN TESTS"
        )
        meta = self._meta(grade_id, grade=True, locked=True, points=points)
        self.cells.append(new_code_cell(source, metadata=meta))
        self.auto_points += points

    def written(self, grade_id, points, model_answer):
        """Manually graded free-text answer; the model answer is replaced by a stub on release."""
        meta = self._meta(grade_id, grade=True, solution=True, points=points)
        self.cells.append(new_markdown_cell(model_answer.strip(), metadata=meta))
        self.manual_points += points

    def reviewed_code(self, grade_id, points, source):
        """Manually graded code cell, read by a human (clarity, handling of errors)."""
        assert "### BEGIN SOLUTION" in source, grade_id
        meta = self._meta(grade_id, grade=True, solution=True, points=points)
        self.cells.append(new_code_cell(source.strip(), metadata=meta))
        self.manual_points += points

    def write(self):
        total = self.auto_points + self.manual_points
        headings = [
            int(points)
            for cell in self.cells
            for points in re.findall(r"^## Question \d+: .*\((\d+) points?", cell.source)
        ]
        assert sum(headings) == total, (self.name, headings, total)
        header = (
            f"# {self.title}\n\n"
            f"**Total: {total} points** ({self.auto_points} autograded, "
            f"{self.manual_points} graded by your instructor).\n\n"
            + self.intro.strip()
            + "\n\n"
            "How this works: read each explanation, then replace `# YOUR CODE HERE` and "
            "`raise NotImplementedError()` with your code, or `YOUR ANSWER HERE` with your "
            "answer. Run the test cell under each answer: if it prints nothing, the visible "
            "checks pass. The grader also runs hidden checks (edge cases), so test your own "
            "ideas too. Before you submit, use *Kernel > Restart Kernel and Run All Cells*."
        )
        first = new_markdown_cell(header, metadata=self._meta(f"{self.name}-intro", locked=True))
        nb = new_notebook(
            cells=[first, *self.cells],
            metadata={
                "kernelspec": {
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                    "name": "python3",
                },
                "language_info": {"name": "python"},
            },
        )
        for cell in nb.cells:
            # Stable ids (nbformat would draw random ones) keep regenerated files diff-free.
            cell["id"] = cell.metadata["nbgrader"]["grade_id"]
        nbformat.validate(nb)
        folder = SOURCE / self.name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{self.name}.ipynb")


# ---------------------------------------------------------------------------
# ps01: variables, expressions and statements


def ps01():
    nb = Notebook(
        "ps01-expressions",
        "Problem set 1: Variables, expressions and statements",
        "Python as a calculator that remembers: values, variables, operators and the "
        "order in which Python evaluates them (PY4E chapter 2).",
    )
    nb.text(
        "values-and-variables",
        """
## Values, variables and operators

A **variable** is a name that refers to a value. An **assignment statement** gives it one:

```python
hours = 35
rate = 2.75
pay = hours * rate      # 96.25
```

Python has several arithmetic operators: `+`, `-`, `*`, `/` (division, always gives a
float), `//` (floor division), `%` (remainder, also called modulus) and `**` (power).
Python evaluates them in the usual mathematical order: parentheses first, then `**`,
then `*`, `/`, `//`, `%`, then `+` and `-` (remember *PEMDAS*).

Functions like `int()`, `float()` and `str()` convert between types. Run the cell
below and predict each line before you look.
""",
    )
    nb.example(
        "operators-demo",
        """
print(7 / 2)      # 3.5
print(7 // 2)     # 3
print(7 % 2)      # 1
print(2 ** 10)    # 1024
print(1 + 2 * 3)  # 7, not 9
print(int("42") + 1, float("2.5") * 2, "4" + str(2))
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: temperature (3 points)

Write a function `celsius_to_fahrenheit(celsius)` that returns the temperature in
degrees Fahrenheit. The formula is *F = C × 9 / 5 + 32*.
""",
    )
    nb.answer(
        "celsius-to-fahrenheit",
        '''
def celsius_to_fahrenheit(celsius):
    """Return the Fahrenheit equivalent of a Celsius temperature."""
    ### BEGIN SOLUTION
    return celsius * 9 / 5 + 32
    ### END SOLUTION
''',
    )
    nb.tests(
        "celsius-to-fahrenheit-tests",
        3,
        """
assert celsius_to_fahrenheit(0) == 32
assert celsius_to_fahrenheit(100) == 212
""",
        """
import math

assert celsius_to_fahrenheit(-40) == -40
assert math.isclose(celsius_to_fahrenheit(37), 98.6)
assert math.isclose(celsius_to_fahrenheit(-17.5), 0.5)
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: gross pay (2 points)

PY4E exercise 2.3: write `gross_pay(hours, rate)` that returns the pay for working
`hours` hours at `rate` per hour. `gross_pay(35, 2.75)` is `96.25`.
""",
    )
    nb.answer(
        "gross-pay",
        '''
def gross_pay(hours, rate):
    """Return hours times rate."""
    ### BEGIN SOLUTION
    return hours * rate
    ### END SOLUTION
''',
    )
    nb.tests(
        "gross-pay-tests",
        2,
        """
assert gross_pay(35, 2.75) == 96.25
""",
        """
import math

assert gross_pay(0, 12.5) == 0
assert math.isclose(gross_pay(37.5, 10.1), 378.75)
assert gross_pay(10, 0) == 0
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: hours and minutes (3 points)

Write `split_minutes(total_minutes)` that returns a **tuple** `(hours, minutes)`
for a whole number of minutes. For example `split_minutes(135)` returns `(2, 15)`.
Use `//` and `%`; both parts must be integers.
""",
    )
    nb.answer(
        "split-minutes",
        '''
def split_minutes(total_minutes):
    """Return (hours, minutes) for a whole number of minutes."""
    ### BEGIN SOLUTION
    return total_minutes // 60, total_minutes % 60
    ### END SOLUTION
''',
    )
    nb.tests(
        "split-minutes-tests",
        3,
        """
assert split_minutes(135) == (2, 15)
""",
        """
assert split_minutes(0) == (0, 0)
assert split_minutes(59) == (0, 59)
assert split_minutes(60) == (1, 0)
assert split_minutes(1441) == (24, 1)
hours, minutes = split_minutes(125)
assert type(hours) is int and type(minutes) is int
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: in your own words (2 points, graded by your instructor)

What is the difference between `/` and `//` in Python 3? Give one example where they
give different answers and one where `//` surprises people (hint: negative numbers).
""",
    )
    nb.written(
        "divide-explained",
        2,
        """
`/` is true division and always returns a float: `7 / 2` is `3.5` and `6 / 2` is `3.0`.
`//` is floor division: it rounds the result *down* to the nearest whole number, so
`7 // 2` is `3`. Rounding down means towards minus infinity, not towards zero:
`-7 // 2` is `-4`, not `-3`.
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps02: conditional execution


def ps02():
    nb = Notebook(
        "ps02-conditionals",
        "Problem set 2: Conditional execution",
        "Making decisions with `if`, `elif` and `else`, and surviving bad input with "
        "`try` and `except` (PY4E chapter 3).",
    )
    nb.text(
        "conditionals-text",
        """
## Making decisions

A comparison such as `x > 40` is a **boolean expression**: it is either `True` or
`False`. An `if` statement runs its indented block only when its condition is true;
`elif` and `else` add more branches, and Python takes the **first** branch that matches:

```python
if x < 0:
    kind = "negative"
elif x == 0:
    kind = "zero"
else:
    kind = "positive"
```

`and`, `or` and `not` combine conditions. Python stops evaluating `and`/`or` as soon
as it knows the answer (*short-circuit evaluation*).

When a conversion may fail, `try`/`except` catches the error instead of crashing:

```python
try:
    value = float(text)
except ValueError:
    value = None
```
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: pay with overtime (3 points)

PY4E exercise 3.1: write `compute_pay(hours, rate)`. Hours up to 40 are paid at
`rate`; every hour above 40 is paid at 1.5 times `rate`. `compute_pay(45, 10)` is
`475.0`.
""",
    )
    nb.answer(
        "compute-pay",
        '''
def compute_pay(hours, rate):
    """Return the pay, with time-and-a-half for hours above 40."""
    ### BEGIN SOLUTION
    if hours > 40:
        return 40 * rate + (hours - 40) * rate * 1.5
    return hours * rate
    ### END SOLUTION
''',
    )
    nb.tests(
        "compute-pay-tests",
        3,
        """
assert compute_pay(45, 10) == 475.0
assert compute_pay(10, 10) == 100
""",
        """
import math

assert compute_pay(40, 10) == 400
assert compute_pay(41, 10) == 415
assert compute_pay(0, 10) == 0
assert math.isclose(compute_pay(50, 12.5), 687.5)
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: letter grades (4 points)

PY4E exercise 3.3: write `grade_for(score)` for a score between 0.0 and 1.0:

| Score | Grade |
|-------|-------|
| >= 0.9 | `"A"` |
| >= 0.8 | `"B"` |
| >= 0.7 | `"C"` |
| >= 0.6 | `"D"` |
| < 0.6 | `"F"` |

A score outside the range 0.0 to 1.0 returns `"Bad score"`.
""",
    )
    nb.answer(
        "grade-for",
        '''
def grade_for(score):
    """Return the letter grade for a score between 0.0 and 1.0."""
    ### BEGIN SOLUTION
    if score < 0.0 or score > 1.0:
        return "Bad score"
    if score >= 0.9:
        return "A"
    elif score >= 0.8:
        return "B"
    elif score >= 0.7:
        return "C"
    elif score >= 0.6:
        return "D"
    return "F"
    ### END SOLUTION
''',
    )
    nb.tests(
        "grade-for-tests",
        4,
        """
assert grade_for(0.95) == "A"
assert grade_for(0.85) == "B"
assert grade_for(0.5) == "F"
""",
        """
assert grade_for(0.9) == "A"
assert grade_for(1.0) == "A"
assert grade_for(0.8) == "B"
assert grade_for(0.75) == "C"
assert grade_for(0.6) == "D"
assert grade_for(0.59) == "F"
assert grade_for(0.0) == "F"
assert grade_for(1.1) == "Bad score"
assert grade_for(-0.1) == "Bad score"
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: a number or nothing (3 points)

Write `safe_float(text)` that returns `text` converted to a float, or `None` when it
is not a number. Use `try`/`except`; do not let any error escape.
`safe_float("3.5")` is `3.5`, `safe_float("ten")` is `None`.
""",
    )
    nb.answer(
        "safe-float",
        '''
def safe_float(text):
    """Return float(text), or None when text is not a number."""
    ### BEGIN SOLUTION
    try:
        return float(text)
    except ValueError:
        return None
    ### END SOLUTION
''',
    )
    nb.tests(
        "safe-float-tests",
        3,
        """
assert safe_float("3.5") == 3.5
assert safe_float("ten") is None
""",
        """
assert safe_float(" 7 ") == 7.0
assert safe_float("-0.25") == -0.25
assert safe_float("1e3") == 1000.0
assert safe_float("") is None
assert safe_float("3.5.1") is None
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: short-circuit evaluation (2 points, graded by your instructor)

Why does `y != 0 and x / y > 2` never raise `ZeroDivisionError`, while
`x / y > 2 and y != 0` can? What is this pattern called in PY4E?
""",
    )
    nb.written(
        "short-circuit-explained",
        2,
        """
Python evaluates `and` from left to right and stops as soon as the result is known. If
`y` is 0, `y != 0` is `False`, so the whole expression is `False` and `x / y` is never
evaluated. In the other order the division happens first and fails when `y` is 0. PY4E
calls the first check a *guardian pattern*: a cheap test that protects a risky one.
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps03: functions


def ps03():
    nb = Notebook(
        "ps03-functions",
        "Problem set 3: Functions",
        "Naming a piece of code so you can reuse it: parameters, arguments, default "
        "values and return values (PY4E chapter 4).",
    )
    nb.text(
        "functions-text",
        """
## Defining functions

`def` creates a function. **Parameters** are the names in the parentheses; the values
you pass when you call it are the **arguments**. A parameter can have a **default
value**, used when the caller leaves it out:

```python
def area(width, height=1):
    return width * height

area(3, 4)   # 12
area(3)      # 3
```

`return` hands a value back to the caller. A function without `return` gives back
`None`. `print` only shows something on the screen, so a function that prints its
answer instead of returning it cannot be used in a calculation (or by the tests).
""",
    )
    nb.example(
        "return-vs-print",
        """
def shout(word):
    print(word.upper())

result = shout("hello")   # prints HELLO
print(result)             # None: shout returned nothing
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: greetings (3 points)

Write `greeting(name, language="en")` that returns `"Hello, <name>!"`. With
`language="fr"` it returns `"Bonjour, <name>!"` and with `language="es"`
`"Hola, <name>!"`. Any other language falls back to English.
""",
    )
    nb.answer(
        "greeting",
        '''
def greeting(name, language="en"):
    """Return a greeting for name in the given language."""
    ### BEGIN SOLUTION
    if language == "fr":
        word = "Bonjour"
    elif language == "es":
        word = "Hola"
    else:
        word = "Hello"
    return word + ", " + name + "!"
    ### END SOLUTION
''',
    )
    nb.tests(
        "greeting-tests",
        3,
        """
assert greeting("Ada") == "Hello, Ada!"
assert greeting("Ada", "fr") == "Bonjour, Ada!"
""",
        """
assert greeting("Grace", language="es") == "Hola, Grace!"
assert greeting("Linus", "xx") == "Hello, Linus!"
assert greeting("", "en") == "Hello, !"
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: leap years (3 points)

Write `is_leap_year(year)` that returns `True` or `False`. A year is a leap year if it
is divisible by 4, except years divisible by 100, which are leap years only if they
are also divisible by 400. So 2024 and 2000 are leap years; 2023 and 1900 are not.
""",
    )
    nb.answer(
        "is-leap-year",
        '''
def is_leap_year(year):
    """Return True when year is a leap year in the Gregorian calendar."""
    ### BEGIN SOLUTION
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    ### END SOLUTION
''',
    )
    nb.tests(
        "is-leap-year-tests",
        3,
        """
assert is_leap_year(2024) is True
assert is_leap_year(2023) is False
""",
        """
assert is_leap_year(2000) is True
assert is_leap_year(1900) is False
assert is_leap_year(2100) is False
assert is_leap_year(1600) is True
assert is_leap_year(4) is True
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: clamp (3 points)

Write `clamp(value, low, high)` that returns `value` limited to the range `low` to
`high`: `clamp(15, 0, 10)` is `10`, `clamp(-3, 0, 10)` is `0`, `clamp(4, 0, 10)` is `4`.
If `low` is greater than `high`, raise a `ValueError` (`raise ValueError("low > high")`).
""",
    )
    nb.answer(
        "clamp",
        '''
def clamp(value, low, high):
    """Return value limited to the range low..high."""
    ### BEGIN SOLUTION
    if low > high:
        raise ValueError("low > high")
    if value < low:
        return low
    if value > high:
        return high
    return value
    ### END SOLUTION
''',
    )
    nb.tests(
        "clamp-tests",
        3,
        """
assert clamp(15, 0, 10) == 10
assert clamp(-3, 0, 10) == 0
assert clamp(4, 0, 10) == 4
""",
        """
assert clamp(0, 0, 10) == 0
assert clamp(10, 0, 10) == 10
assert clamp(5, 5, 5) == 5
assert clamp(-2.5, -5, -1) == -2.5
try:
    clamp(1, 10, 0)
except ValueError:
    pass
else:
    raise AssertionError("clamp(1, 10, 0) should raise ValueError")
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: why functions? (3 points, graded by your instructor)

PY4E gives several reasons to split a program into functions. Name two of them, and
explain what goes wrong when a function *prints* its result instead of *returning* it.
""",
    )
    nb.written(
        "why-functions",
        3,
        """
Functions give a name to a group of statements, which makes the program easier to read
and debug; they remove repeated code, so a fix is made in one place; and a well-tested
function can be reused in other programs. A function that prints its result gives the
caller `None`, so the value cannot be stored, compared or used in a further calculation
(and an automatic test cannot check it).
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps04: loops and iteration


def ps04():
    nb = Notebook(
        "ps04-loops",
        "Problem set 4: Loops and iteration",
        "Repeating work with `while` and `for`, and the counting, summing and "
        "finding-the-largest loop patterns (PY4E chapter 5).",
    )
    nb.text(
        "loops-text",
        """
## Loops

A `while` loop repeats while its condition is true; something in the body must
eventually make the condition false. A `for` loop runs once for each item of a
sequence. `break` leaves a loop early; `continue` skips to the next iteration.

Most loops follow a pattern: set up a variable before the loop, update it on each
iteration, use it after the loop.

```python
count = 0
total = 0
for value in [3, 41, 12, 9, 74, 15]:
    count = count + 1
    total = total + value
print(count, total)   # 6 154
```

To find the largest or smallest value without `max` or `min`, start with `None` and
replace it whenever you see a better value.
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: count, total, average (4 points)

PY4E exercise 5.1: write `count_and_total(numbers)` that returns a tuple
`(count, total, average)` for a list of numbers. For an empty list the average is
`None` (there is nothing to divide by). Use a loop, not `len` or `sum`.
""",
    )
    nb.answer(
        "count-and-total",
        '''
def count_and_total(numbers):
    """Return (count, total, average) of numbers; average is None for no numbers."""
    ### BEGIN SOLUTION
    count = 0
    total = 0
    for number in numbers:
        count = count + 1
        total = total + number
    average = total / count if count else None
    return count, total, average
    ### END SOLUTION
''',
    )
    nb.tests(
        "count-and-total-tests",
        4,
        """
assert count_and_total([4, 5, 6]) == (3, 15, 5.0)
""",
        """
import math

assert count_and_total([]) == (0, 0, None)
assert count_and_total([7]) == (1, 7, 7.0)
count, total, average = count_and_total([1.5, -2.5, 4])
assert count == 3 and math.isclose(total, 3.0) and math.isclose(average, 1.0)
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: the smallest value (3 points)

Write `smallest(numbers)` that returns the smallest number in a list, or `None` for an
empty list. Do not use `min`: use the `None` pattern from the explanation above.
""",
    )
    nb.answer(
        "smallest",
        '''
def smallest(numbers):
    """Return the smallest of numbers, or None when there are none."""
    ### BEGIN SOLUTION
    result = None
    for number in numbers:
        if result is None or number < result:
            result = number
    return result
    ### END SOLUTION
''',
    )
    nb.tests(
        "smallest-tests",
        3,
        """
assert smallest([3, 41, 12, 9, 74, 15]) == 3
""",
        """
assert smallest([]) is None
assert smallest([5]) == 5
assert smallest([-1, -7, 0, -7]) == -7
assert smallest([0, 2]) == 0
assert smallest([2.5, 2.25]) == 2.25
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: the Collatz sequence (3 points)

Start from a positive whole number `n`. If it is even, halve it; if it is odd, replace
it with `3 * n + 1`. Repeat until you reach 1. Write `collatz_steps(n)` that returns
how many steps that takes, using a `while` loop: `collatz_steps(1)` is `0`,
`collatz_steps(6)` is `8` (6, 3, 10, 5, 16, 8, 4, 2, 1). For `n` smaller than 1,
raise `ValueError` (otherwise the loop would never end).
""",
    )
    nb.answer(
        "collatz-steps",
        '''
def collatz_steps(n):
    """Return the number of Collatz steps from n down to 1."""
    ### BEGIN SOLUTION
    if n < 1:
        raise ValueError("n must be at least 1")
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps = steps + 1
    return steps
    ### END SOLUTION
''',
    )
    nb.tests(
        "collatz-steps-tests",
        3,
        """
assert collatz_steps(1) == 0
assert collatz_steps(6) == 8
""",
        """
assert collatz_steps(2) == 1
assert collatz_steps(7) == 16
assert collatz_steps(27) == 111
for bad in (0, -5):
    try:
        collatz_steps(bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"collatz_steps({bad}) should raise ValueError")
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: a loop that never stops (3 points, graded by your instructor)

This loop is meant to print a countdown from 5 to 1 and then `Blastoff!`, but it
never stops. Explain why, and show the corrected code.

```python
n = 5
while n > 0:
    print(n)
print("Blastoff!")
```
""",
    )
    nb.written(
        "infinite-loop-explained",
        3,
        """
Nothing in the body of the loop changes `n`, so `n > 0` stays true forever and the loop
prints 5 again and again. The body must move towards the end condition:

```python
n = 5
while n > 0:
    print(n)
    n = n - 1
print("Blastoff!")
```
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps05: strings


def ps05():
    nb = Notebook(
        "ps05-strings",
        "Problem set 5: Strings",
        "Indexing, slicing, looping over characters and string methods (PY4E chapter 6).",
    )
    nb.text(
        "strings-text",
        """
## Strings

A string is a sequence of characters. `s[0]` is its first character and `s[-1]` its
last; `len(s)` is its length. A **slice** `s[start:stop]` copies the characters from
`start` up to, *but not including*, `stop`.

Strings have many methods: `lower()`, `upper()`, `strip()`, `startswith()`,
`find()` (the index of a substring, or `-1`), `split()`, `replace()` and more. The `in`
operator tests for a substring. Strings are **immutable**: methods return new strings
and never change the original.
""",
    )
    nb.example(
        "strings-demo",
        """
line = "From ada@mail.example.org Sat Jan  5 09:14:16 2008"
at = line.find("@")
space = line.find(" ", at)
print(at, space, line[at + 1 : space])   # 8 25 mail.example.org
print("example" in line, line.startswith("From "), line.lower()[:4])
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: the host name (3 points)

Write `extract_host(line)` that returns the host part of the address in a line like
`"From ada@mail.example.org Sat Jan  5 09:14:16 2008"`, here `"mail.example.org"`:
everything after the `@` up to the next space. Use `find` and slicing.
""",
    )
    nb.answer(
        "extract-host",
        '''
def extract_host(line):
    """Return the host of the first address in a 'From ' line."""
    ### BEGIN SOLUTION
    at = line.find("@")
    space = line.find(" ", at)
    if space == -1:
        return line[at + 1 :]
    return line[at + 1 : space]
    ### END SOLUTION
''',
    )
    nb.tests(
        "extract-host-tests",
        3,
        """
assert extract_host("From ada@mail.example.org Sat Jan  5 09:14:16 2008") == "mail.example.org"
""",
        """
assert extract_host("From bo@example.org Fri Jan  4 16:10:39 2008") == "example.org"
assert extract_host("From x.y-z@lists.dept.example.org Thu Jan  3 8:01:02 2008") == (
    "lists.dept.example.org"
)
assert extract_host("From ada@example.org") == "example.org"
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: counting letters (3 points)

Write `count_letter(text, letter)` that returns how many times `letter` appears in
`text`, ignoring upper and lower case. Use a `for` loop over the characters (not the
`count` method). `count_letter("banana", "a")` is `3`.
""",
    )
    nb.answer(
        "count-letter",
        '''
def count_letter(text, letter):
    """Return how often letter occurs in text, ignoring case."""
    ### BEGIN SOLUTION
    letter = letter.lower()
    count = 0
    for char in text.lower():
        if char == letter:
            count = count + 1
    return count
    ### END SOLUTION
''',
    )
    nb.tests(
        "count-letter-tests",
        3,
        """
assert count_letter("banana", "a") == 3
""",
        """
assert count_letter("", "a") == 0
assert count_letter("Banana Boat", "b") == 2
assert count_letter("banana", "B") == 1
assert count_letter("Mississippi", "z") == 0
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: palindromes (4 points)

A palindrome reads the same forwards and backwards once you ignore case, spaces and
punctuation. Write `is_palindrome(text)` that returns `True` or `False`. Keep only the
characters for which `char.isalnum()` is true, lower-case them, and compare with the
reverse (`s[::-1]`). `is_palindrome("A man, a plan, a canal: Panama")` is `True`.
""",
    )
    nb.answer(
        "is-palindrome",
        '''
def is_palindrome(text):
    """Return True when text is a palindrome, ignoring case and punctuation."""
    ### BEGIN SOLUTION
    letters = ""
    for char in text:
        if char.isalnum():
            letters = letters + char.lower()
    return letters == letters[::-1]
    ### END SOLUTION
''',
    )
    nb.tests(
        "is-palindrome-tests",
        4,
        """
assert is_palindrome("A man, a plan, a canal: Panama") is True
assert is_palindrome("python") is False
""",
        """
assert is_palindrome("") is True
assert is_palindrome("x") is True
assert is_palindrome("ab") is False
assert is_palindrome("No 'x' in Nixon") is True
assert is_palindrome("Was it a car or a cat I saw?") is True
assert is_palindrome("12321") is True
assert is_palindrome("12 31") is False
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: the spam confidence (2 points)

PY4E exercise 6.5 style: write `parse_confidence(line)` that takes a line like
`"X-DSPAM-Confidence: 0.8475"` and returns the number after the colon as a float.
""",
    )
    nb.answer(
        "parse-confidence",
        '''
def parse_confidence(line):
    """Return the float after the colon of an X-DSPAM-Confidence line."""
    ### BEGIN SOLUTION
    colon = line.find(":")
    return float(line[colon + 1 :].strip())
    ### END SOLUTION
''',
    )
    nb.tests(
        "parse-confidence-tests",
        2,
        """
assert parse_confidence("X-DSPAM-Confidence: 0.8475") == 0.8475
""",
        """
assert parse_confidence("X-DSPAM-Confidence:0.6178\\n") == 0.6178
assert parse_confidence("X-DSPAM-Confidence:    1") == 1.0
""",
    )
    nb.text(
        "q5-text",
        """
## Question 5: immutable strings (2 points, graded by your instructor)

What happens when you run `greeting = "Hello"` and then `greeting[0] = "J"`? How do
you get the string `"Jello"` from `greeting` instead?
""",
    )
    nb.written(
        "immutable-explained",
        2,
        """
The assignment fails with `TypeError: 'str' object does not support item assignment`,
because strings are immutable. Build a new string instead and, if you like, assign it
to the same name: `greeting = "J" + greeting[1:]` (or `greeting.replace("H", "J")`).
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps06: files, with a small mailbox shipped beside the notebook

MBOX_MESSAGES = [
    ("ada@mail.example.org", "Sat Jan  5 09:14:16 2008", "0.8475", "r39753 - content/trunk"),
    ("louis@example.org", "Fri Jan  4 18:10:48 2008", "0.6178", "r39752 - site/branches"),
    ("zoe@lists.example.org", "Fri Jan  4 16:10:39 2008", "0.6961", "r39751 - gradebook"),
    ("ada@mail.example.org", "Fri Jan  4 15:46:24 2008", "0.7565", "r39750 - event"),
    ("ray@example.org", "Fri Jan  4 15:03:18 2008", "0.7626", "r39749 - assignment"),
    ("cwen@mail.example.org", "Fri Jan  4 14:50:18 2008", "0.7556", "r39748 - polls"),
    ("ada@mail.example.org", "Fri Jan  4 11:37:30 2008", "0.7002", "r39747 - help"),
    ("gopal@example.org", "Thu Jan  3 16:34:40 2008", "0.9846", "r39746 - syllabus"),
]


def write_mbox(path):
    """A tiny mailbox in the shape of PY4E's mbox-short.txt, with invented example.org people."""
    lines = []
    for number, (sender, date, confidence, subject) in enumerate(MBOX_MESSAGES, start=1):
        host = sender.split("@")[1]
        lines += [
            f"From {sender} {date}",
            f"Return-Path: <{sender}>",
            f"Received: from relay.example.org by {host}; {date}",
            f"Date: {date}",
            f"From: {sender}",
            "To: source@collab.example.org",
            f"Subject: [course-tools] commit: {subject}",
            "X-Content-Type-Message-Body: text/plain; charset=UTF-8",
            "X-DSPAM-Result: Innocent",
            f"X-DSPAM-Processed: {date}",
            f"X-DSPAM-Confidence: {confidence}",
            "X-DSPAM-Probability: 0.0000",
            "",
            f"Details: https://source.example.org/changes/{number}",
            "",
            "Author: " + sender,
            f"Log: tidy the {subject.split(' - ')[1]} tool",
            "",
            "From the notes: nothing else changed.",
            "",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def ps06():
    nb = Notebook(
        "ps06-files",
        "Problem set 6: Files",
        "Reading a text file line by line and picking out the lines you need (PY4E "
        "chapter 7). The file `mbox-short.txt` next to this notebook is a small mailbox; "
        "everyone in it is invented and every address is at example.org.",
    )
    folder = SOURCE / "ps06-files"
    folder.mkdir(parents=True, exist_ok=True)
    lines = write_mbox(folder / "mbox-short.txt")
    confidences = [float(c) for _, _, c, _ in MBOX_MESSAGES]
    average = sum(confidences) / len(confidences)
    nb.text(
        "files-text",
        """
## Opening and reading files

`open(name)` returns a **file handle**. Looping over it with `for` gives one line at a
time, each ending in a newline character `"\\n"`; `rstrip()` removes it. The `with`
statement closes the file for you when the block ends:

```python
with open("mbox-short.txt") as handle:
    for line in handle:
        line = line.rstrip()
        if not line.startswith("Subject:"):
            continue
        print(line)
```

Opening a file that does not exist raises `FileNotFoundError`. Paths like
`"mbox-short.txt"` are relative to the folder this notebook is in.
""",
    )
    nb.example(
        "peek-at-file",
        """
with open("mbox-short.txt") as handle:
    for number, line in enumerate(handle):
        if number == 12:
            break
        print(line.rstrip())
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: counting lines (2 points)

Write `count_lines(path)` that opens the file at `path` and returns how many lines it
has.
""",
    )
    nb.answer(
        "count-lines",
        '''
def count_lines(path):
    """Return the number of lines in the file at path."""
    ### BEGIN SOLUTION
    count = 0
    with open(path) as handle:
        for _ in handle:
            count = count + 1
    return count
    ### END SOLUTION
''',
    )
    nb.tests(
        "count-lines-tests",
        2,
        f"""
assert count_lines("mbox-short.txt") == {len(lines)}
""",
        """
import os
import tempfile

with tempfile.TemporaryDirectory() as folder:
    three = os.path.join(folder, "three.txt")
    with open(three, "w") as handle:
        handle.write("one\\ntwo\\n\\n")
    assert count_lines(three) == 3
    empty = os.path.join(folder, "empty.txt")
    open(empty, "w").close()
    assert count_lines(empty) == 0
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: who sent mail? (4 points)

PY4E exercise 8.5 style: every message begins with a line such as
`From ada@mail.example.org Sat Jan  5 09:14:16 2008`. Write `sender_addresses(path)`
that returns the list of addresses from those lines, in file order (repeats included).

Careful: the headers also contain lines starting with `From:` (with a colon), and the
body text can start with `From the ...`; only lines starting with `"From "` whose
second word contains an `@` count. A line `"From"` alone must not crash your code.
""",
    )
    nb.answer(
        "sender-addresses",
        '''
def sender_addresses(path):
    """Return the address of every 'From ' line in the mailbox at path."""
    ### BEGIN SOLUTION
    addresses = []
    with open(path) as handle:
        for line in handle:
            if not line.startswith("From "):
                continue
            words = line.split()
            if len(words) < 2 or "@" not in words[1]:
                continue
            addresses.append(words[1])
    return addresses
    ### END SOLUTION
''',
    )
    senders = [sender for sender, _, _, _ in MBOX_MESSAGES]
    nb.tests(
        "sender-addresses-tests",
        4,
        f"""
senders = sender_addresses("mbox-short.txt")
assert senders[0] == {senders[0]!r}
assert len(senders) == {len(senders)}
""",
        f"""
import os
import tempfile

assert senders == {senders!r}
with tempfile.TemporaryDirectory() as folder:
    tricky = os.path.join(folder, "tricky.txt")
    with open(tricky, "w") as handle:
        handle.write(
            "From\\n"
            "From:  someone@example.org\\n"
            "From the desk of nobody\\n"
            "\\n"
            "  From indented@example.org Mon Jan  7 10:00:00 2008\\n"
            "From first@example.org Mon Jan  7 10:00:00 2008\\n"
            "From second@example.org\\n"
        )
    assert sender_addresses(tricky) == ["first@example.org", "second@example.org"]
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: average spam confidence (4 points)

PY4E exercise 7.2: write `average_confidence(path)` that reads every line starting
with `X-DSPAM-Confidence:`, takes the number after the colon, and returns their
average as a float. If the file has no such lines, return `None`.
""",
    )
    nb.answer(
        "average-confidence",
        '''
def average_confidence(path):
    """Return the mean X-DSPAM-Confidence in the file at path, or None if there is none."""
    ### BEGIN SOLUTION
    count = 0
    total = 0.0
    with open(path) as handle:
        for line in handle:
            if not line.startswith("X-DSPAM-Confidence:"):
                continue
            total = total + float(line[line.find(":") + 1 :])
            count = count + 1
    if count == 0:
        return None
    return total / count
    ### END SOLUTION
''',
    )
    nb.tests(
        "average-confidence-tests",
        4,
        f"""
import math

assert math.isclose(average_confidence("mbox-short.txt"), {average!r})
""",
        """
import math
import os
import tempfile

with tempfile.TemporaryDirectory() as folder:
    none = os.path.join(folder, "none.txt")
    with open(none, "w") as handle:
        handle.write("Subject: no numbers here\\nX-DSPAM-Probability: 0.5\\n")
    assert average_confidence(none) is None
    two = os.path.join(folder, "two.txt")
    with open(two, "w") as handle:
        handle.write(
            "X-DSPAM-Confidence: 0.5\\n"
            "not X-DSPAM-Confidence: 9\\n"
            "X-DSPAM-Confidence:0.25\\n"
        )
    assert math.isclose(average_confidence(two), 0.375)
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: a friendly program (3 points, graded by your instructor)

Programs that read files meet missing files. Write `report_lines(path)` that prints
`"<path> has <n> lines"` and returns the count, but when the file does not exist
prints a short, friendly message (no traceback) and returns `None`. Your instructor
reads this code for correctness and clarity; the last line calls it with a file that
does not exist.
""",
    )
    nb.reviewed_code(
        "report-lines",
        3,
        '''
def report_lines(path):
    """Print and return the number of lines in path; explain a missing file instead."""
    ### BEGIN SOLUTION
    try:
        handle = open(path)
    except FileNotFoundError:
        print(f"Sorry, there is no file called {path!r}. Check the name and try again.")
        return None
    with handle:
        count = 0
        for _ in handle:
            count = count + 1
    print(f"{path} has {count} lines")
    return count
    ### END SOLUTION


report_lines("mbox-short.txt")
report_lines("no-such-file.txt")
''',
    )
    return nb


# ---------------------------------------------------------------------------
# ps07: lists, dictionaries and tuples


def ps07():
    nb = Notebook(
        "ps07-lists-dicts",
        "Problem set 7: Lists, dictionaries and tuples",
        "Collections: lists you can change, dictionaries that count things, and tuples "
        "that sort them (PY4E chapters 8 to 10).",
    )
    nb.text(
        "collections-text",
        """
## Lists, dictionaries and tuples

A **list** is a mutable sequence: `words = line.split()` gives a list of words, and
`words.append(w)` adds one. A **dictionary** maps keys to values; `counts.get(key, 0)`
returns the value, or 0 when the key is missing, which makes counting short:

```python
counts = {}
for word in "the cat saw the dog".split():
    counts[word] = counts.get(word, 0) + 1
# {'the': 2, 'cat': 1, 'saw': 1, 'dog': 1}
```

A **tuple** is an immutable sequence like `("the", 2)`. `counts.items()` gives
`(key, value)` tuples, and `sorted` can order them, with `key=` and `reverse=True`.
Tuples compare element by element, so `(-count, word)` sorts by count (largest first)
and then alphabetically.
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: word counts (3 points)

Write `word_counts(text)` that returns a dictionary mapping each word of `text`
(split on whitespace, lower-cased) to how many times it appears.
""",
    )
    nb.answer(
        "word-counts",
        '''
def word_counts(text):
    """Return a dict of lower-cased word -> number of occurrences in text."""
    ### BEGIN SOLUTION
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
    ### END SOLUTION
''',
    )
    nb.tests(
        "word-counts-tests",
        3,
        """
assert word_counts("the cat saw the dog") == {"the": 2, "cat": 1, "saw": 1, "dog": 1}
""",
        """
assert word_counts("") == {}
assert word_counts("   \\n\\t ") == {}
assert word_counts("Spam spam SPAM eggs") == {"spam": 3, "eggs": 1}
assert word_counts("a\\nb  a") == {"a": 2, "b": 1}
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: the top words (4 points)

Write `top_n(counts, n)` that takes a dictionary like the one from Question 1 and
returns a list of the `n` most frequent `(word, count)` tuples, largest count first;
words with the same count are in alphabetical order. If there are fewer than `n`
words, return them all.
""",
    )
    nb.answer(
        "top-n",
        '''
def top_n(counts, n):
    """Return the n (word, count) pairs with the largest counts, ties alphabetical."""
    ### BEGIN SOLUTION
    ordered = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return ordered[:n]
    ### END SOLUTION
''',
    )
    nb.tests(
        "top-n-tests",
        4,
        """
assert top_n({"the": 2, "cat": 1, "saw": 1, "dog": 1}, 2) == [("the", 2), ("cat", 1)]
""",
        """
assert top_n({}, 3) == []
assert top_n({"a": 1}, 0) == []
assert top_n({"b": 2, "a": 2, "c": 5}, 10) == [("c", 5), ("a", 2), ("b", 2)]
counts = {"x": 1, "y": 3}
assert top_n(counts, 1) == [("y", 3)]
assert counts == {"x": 1, "y": 3}, "top_n must not change its argument"
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: mail by day of the week (3 points)

PY4E exercise 9.2: given a list of mailbox lines, count the messages per day of the
week. Only lines starting with `"From "` count, and the day is their third word.
`day_histogram(lines)` returns a dictionary such as `{"Fri": 5, "Sat": 1}`.
""",
    )
    nb.answer(
        "day-histogram",
        '''
def day_histogram(lines):
    """Return a dict of weekday -> number of 'From ' lines sent that day."""
    ### BEGIN SOLUTION
    days = {}
    for line in lines:
        words = line.split()
        if len(words) < 3 or words[0] != "From":
            continue
        days[words[2]] = days.get(words[2], 0) + 1
    return days
    ### END SOLUTION
''',
    )
    nb.tests(
        "day-histogram-tests",
        3,
        """
mail = [
    "From ada@example.org Sat Jan  5 09:14:16 2008",
    "From: ada@example.org",
    "From bo@example.org Fri Jan  4 18:10:48 2008",
    "Subject: hello",
    "From cy@example.org Fri Jan  4 16:10:39 2008",
]
assert day_histogram(mail) == {"Sat": 1, "Fri": 2}
""",
        """
assert day_histogram([]) == {}
assert day_histogram(["From", "From x@example.org", "", "From: y@example.org Mon"]) == {}
assert day_histogram(["From a@example.org Mon Jan 7 10:00:00 2008\\n"] * 3) == {"Mon": 3}
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: keys (2 points, graded by your instructor)

A tuple such as `("ada", "Sat")` can be a dictionary key, but the list
`["ada", "Sat"]` cannot. Why? Give a situation where a tuple key is useful.
""",
    )
    nb.written(
        "tuple-keys-explained",
        2,
        """
Dictionary keys must be hashable, which in practice means immutable: the dictionary
finds a key by its hash, and a list could change after it was stored, so Python refuses
it (`TypeError: unhashable type: 'list'`). A tuple cannot change, so it can be a key.
Example: counting messages per sender *and* weekday with
`counts[(sender, day)] = counts.get((sender, day), 0) + 1`.
""",
    )
    return nb


# ---------------------------------------------------------------------------
# ps08: regular expressions


def ps08():
    nb = Notebook(
        "ps08-regex",
        "Problem set 8: Regular expressions",
        "Searching and extracting text with the `re` module (PY4E chapter 11).",
    )
    nb.text(
        "regex-text",
        """
## Regular expressions

`re.search(pattern, text)` tells you whether a pattern matches somewhere;
`re.findall(pattern, text)` returns a list of every match, or of the part inside
parentheses when the pattern has a group. Some building blocks:

| Pattern | Matches |
|---------|---------|
| `^` / `$` | start / end of the line |
| `.` | any character |
| `\\S` / `\\s` | a non-whitespace / whitespace character |
| `[0-9]` | one digit; `[a-z.]` one of the listed characters |
| `+` / `*` / `?` | one or more / zero or more / optional (of the thing before) |
| `( )` | the part to extract |

Write patterns as raw strings, `r"..."`, so backslashes reach `re` unchanged.
""",
    )
    nb.example(
        "regex-demo",
        """
import re

line = "From ada@mail.example.org Sat Jan  5 09:14:16 2008"
print(re.findall(r"\\S+@\\S+", line))          # ['ada@mail.example.org']
print(re.findall(r"^From .*@(\\S+)", line))    # ['mail.example.org']
print(re.findall(r"[0-9]+", "3 cats, 12 dogs"))  # ['3', '12']
""",
    )
    nb.text(
        "q1-text",
        """
## Question 1: finding addresses (4 points)

Write `find_emails(text)` that returns every e-mail address in `text`, in order. An
address is one or more of letters, digits, `.`, `_`, `+`, `-`, then `@`, then a host
made of words separated by dots (at least one dot). Punctuation around an address,
such as `<...>` or a full stop at the end of a sentence, is not part of it.
""",
    )
    nb.answer(
        "find-emails",
        r'''
import re


def find_emails(text):
    """Return the e-mail addresses in text, in order."""
    ### BEGIN SOLUTION
    return re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text)
    ### END SOLUTION
''',
    )
    nb.tests(
        "find-emails-tests",
        4,
        """
assert find_emails("Mail ada@example.org or bo@mail.example.org") == [
    "ada@example.org",
    "bo@mail.example.org",
]
""",
        """
assert find_emails("") == []
assert find_emails("no address here, not even @ or example.org") == []
assert find_emails("Write to <ray@example.org>.") == ["ray@example.org"]
assert find_emails("Ask ada.lovelace+py4e@dept.example.org.") == [
    "ada.lovelace+py4e@dept.example.org"
]
assert find_emails("x@localhost is not one, y@a.b is") == ["y@a.b"]
""",
    )
    nb.text(
        "q2-text",
        """
## Question 2: the numbers in a text (3 points)

PY4E's chapter 11 assignment: write `sum_numbers(text)` that finds every whole number
in `text` with `re.findall` and returns their sum as an int (0 when there are none).
`sum_numbers("3 cats, 12 dogs")` is `15`.
""",
    )
    nb.answer(
        "sum-numbers",
        r'''
def sum_numbers(text):
    """Return the sum of all the whole numbers written in text."""
    ### BEGIN SOLUTION
    return sum(int(digits) for digits in re.findall(r"[0-9]+", text))
    ### END SOLUTION
''',
    )
    nb.tests(
        "sum-numbers-tests",
        3,
        """
assert sum_numbers("3 cats, 12 dogs") == 15
""",
        """
assert sum_numbers("") == 0
assert sum_numbers("no numbers") == 0
assert sum_numbers("abc123def45") == 168
assert sum_numbers("line 1\\nline 2\\n007") == 10
assert type(sum_numbers("1 2")) is int
""",
    )
    nb.text(
        "q3-text",
        """
## Question 3: confidence values (3 points)

Write `confidence_values(lines)` that returns, as floats, the numbers from the lines
that *start with* `X-DSPAM-Confidence:` followed by optional spaces and a number such
as `0.8475`. Use a regular expression with `^` and a group.
""",
    )
    nb.answer(
        "confidence-values",
        r'''
def confidence_values(lines):
    """Return the X-DSPAM-Confidence numbers of the lines that start with that header."""
    ### BEGIN SOLUTION
    values = []
    for line in lines:
        values += [float(v) for v in re.findall(r"^X-DSPAM-Confidence:\s*([0-9.]+)", line)]
    return values
    ### END SOLUTION
''',
    )
    nb.tests(
        "confidence-values-tests",
        3,
        """
assert confidence_values(["X-DSPAM-Confidence: 0.8475", "Subject: hi"]) == [0.8475]
""",
        """
assert confidence_values([]) == []
assert confidence_values(["Re: X-DSPAM-Confidence: 0.5"]) == []
assert confidence_values(["X-DSPAM-Confidence:0.25\\n", "X-DSPAM-Confidence: 1"]) == [0.25, 1.0]
assert confidence_values(["X-DSPAM-Probability: 0.0000"]) == []
""",
    )
    nb.text(
        "q4-text",
        """
## Question 4: greedy matching (2 points, graded by your instructor)

What does `re.findall(r"^F.+:", "From: Using the : character")` return, and why?
What changes with `r"^F.+?:"`?
""",
    )
    nb.written(
        "greedy-explained",
        2,
        """
It returns `['From: Using the :']`. `+` is *greedy*: `.+` grabs as many characters as
it can and then backs off only far enough for `:` to match, so the match runs to the
*last* colon. `+?` is non-greedy: it takes as few characters as possible, so
`r"^F.+?:"` stops at the first colon and returns `['From:']`.
""",
    )
    return nb


def main():
    for build in (ps01, ps02, ps03, ps04, ps05, ps06, ps07, ps08):
        nb = build()
        nb.write()
        print(f"{nb.name}: {nb.auto_points + nb.manual_points} points")

if __name__ == "__main__":
    main()
