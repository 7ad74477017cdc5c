"""Parsers of teacher replies, on realistic messy text.

Cases marked "SmolLM2" are verbatim replies of SmolLM2-135M-Instruct (Q4_1, llama.cpp) to
this repo's prompts (or close variants), collected while writing the parsers.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from selfinstruct.stages.classify import parse_yes_no
from selfinstruct.stages.inputs import parse_inputs, parse_label_input_pairs
from selfinstruct.stages.instructions import parse_task_list
from selfinstruct.stages.outputs import clean_output
from selfinstruct.stages.text import is_no_input, strip_emphasis

# --------------------------------------------------------------- parse_task_list

TASK_LIST_CASES: list[tuple[str, str, list[str]]] = [
    # ---- completions-style continuations (the prompt ended with "Task 9:")
    (
        "continuation then Task N: lines",
        " Write a poem about the sea.\nTask 10: Summarize the article in two sentences.\n"
        "Task 11: Name three primary colors.",
        [
            "Write a poem about the sea.",
            "Summarize the article in two sentences.",
            "Name three primary colors.",
        ],
    ),
    (
        "Task 10. / task 10 - / 10. variants",
        "Describe your ideal weekend.\nTask 10. Explain how rainbows form.\n"
        "task 11 - List five uses of a paperclip.\n12. Convert 5 km to miles.",
        [
            "Describe your ideal weekend.",
            "Explain how rainbows form.",
            "List five uses of a paperclip.",
            "Convert 5 km to miles.",
        ],
    ),
    (
        "trailing empty Task 17:",
        "Give me a synonym for happy.\nTask 16: Rewrite the sentence in passive voice.\nTask 17:",
        ["Give me a synonym for happy.", "Rewrite the sentence in passive voice."],
    ),
    (
        "trailing Task 17: with only spaces",
        "Plan a birthday party.\nTask 17:   ",
        ["Plan a birthday party."],
    ),
    (
        "numbers inside items are not numbering",
        "Sort 3, 1, 2 in order.\nTask 10: Is 17 a prime number?\nTask 11: Add 2.5 and 3.75.",
        ["Sort 3, 1, 2 in order.", "Is 17 a prime number?", "Add 2.5 and 3.75."],
    ),
    (
        "items starting with a year or a number",
        "2024 was a leap year; explain why.\nTask 10: 3.14 is close to pi. Give a better value.",
        ["2024 was a leap year; explain why.", "3.14 is close to pi. Give a better value."],
    ),
    (
        "CRLF line endings",
        "Write a limerick about a cat.\r\nTask 10: Describe the water cycle.\r\n"
        "Task 11: Name a fruit.\r\n",
        ["Write a limerick about a cat.", "Describe the water cycle.", "Name a fruit."],
    ),
    (
        "old Mac CR line endings",
        "Write a limerick.\rTask 10: Describe the water cycle.",
        ["Write a limerick.", "Describe the water cycle."],
    ),
    (
        "tasks on one line",
        "Write a poem. Task 10: Summarize the news. Task 11: Name a fruit.",
        ["Write a poem.", "Summarize the news.", "Name a fruit."],
    ),
    (
        "doubled labels after Task N:",
        "Task 9: Write a story.\nTask 10: Instruction: Explain gravity to a child.",
        ["Write a story.", "Explain gravity to a child."],
    ),
    (
        "instance lines inside a continuation",
        "Translate the sentence into German.\nInput: I like apples.\nOutput: Ich mag Äpfel.\n"
        "Task 10: Find the largest number in the list.\nInput: 3, 9, 4\nOutput: 9",
        ["Translate the sentence into German.", "Find the largest number in the list."],
    ),
    (
        "inline Input: after the instruction sentence",
        "Task 9: Reverse the string. Input: hello\nTask 10: Count the vowels. Output: 3",
        ["Reverse the string.", "Count the vowels."],
    ),
    (
        "unicode and emoji",
        "Traduis la phrase en espagnol : « Bonjour »\nTask 10: Écris un haïku 🍂 sur l'automne.",
        ["Traduis la phrase en espagnol : « Bonjour »", "Écris un haïku 🍂 sur l'automne."],
    ),
    (
        "CJK task text",
        "写一首关于春天的诗。\nTask 10: 把这句话翻译成英文。",
        ["写一首关于春天的诗。", "把这句话翻译成英文。"],
    ),
    (
        "copied seed header mid-reply",
        "Name a color.\nTask 10: Write a haiku about rain.\nCome up with a series of tasks:\n"
        "Task 1: Give three tips for staying healthy.",
        ["Name a color.", "Write a haiku about rain.", "Give three tips for staying healthy."],
    ),
    (
        "SmolLM2: continuation, then Task 8 (stopped at blank line)",
        " Create a joke about a vampire.\nTask 8: Create a haiku about a vampire.",
        ["Create a joke about a vampire.", "Create a haiku about a vampire."],
    ),
    (
        "SmolLM2: continuation then an off-task paragraph",
        " Reverse the order of the sentence.\n\nTo solve this problem, you must find the order "
        "of the three tasks, sort the given list of numbers in ascending order, write a haiku "
        "about autumn leaves, and translate the sentence into French.",
        ["Reverse the order of the sentence."],
    ),
    (
        "SmolLM2: continuation then a code detour",
        " Write a song using the lyrics from the movie Monsters Bros.\n\nUsing Java, create a "
        "JavaScript function named `todays_list_to_dict` that takes a single argument:\n\n"
        "```javascript\nlet today_list;\n```\n\nThis function should return a dictionary.",
        ["Write a song using the lyrics from the movie Monsters Bros."],
    ),
    (
        "SmolLM2: tasks, then chatter after a blank line",
        " Read a passage about a person with sickle cell malaria.\nTask 8: Create a list of the "
        "top 5 food items for a person with sickle cell malaria.\nTask 9: Make a joke about a "
        "person with sickle cell malaria.\n\nThe task is to complete the task in the given time.",
        [
            "Read a passage about a person with sickle cell malaria.",
            "Create a list of the top 5 food items for a person with sickle cell malaria.",
            "Make a joke about a person with sickle cell malaria.",
        ],
    ),
    (
        "SmolLM2: continuation then 'I hope this helps.'",
        " Translate the sentence into Spanish.\n\nI hope this helps.",
        ["Translate the sentence into Spanish."],
    ),
    (
        "SmolLM2: copied seeds as '1. Task 1: ...' after chatter",
        " Describe a superhero who loves a certain color.\n\nIn this challenge, you'll create a "
        "program that sorts tasks by their task labels:\n\n1. Task 1: Give three tips for "
        "staying healthy\n2. Task 2: Sort the given list of numbers in ascending order\n\n"
        "To complete this task, you'll need to:\n\n* Create a Python script that sorts them.\n"
        "* Use a for loop to create a new list.",
        [
            "Describe a superhero who loves a certain color.",
            "Give three tips for staying healthy",
            "Sort the given list of numbers in ascending order",
        ],
    ),
    # ---- chat-style lists
    (
        "preamble, numbered list, closing chatter",
        "Sure! Here are 10 new tasks:\n\n1. Write a haiku about the moon.\n2. Explain what a "
        "black hole is.\n3. Suggest a name for a bakery.\n\nI hope these help!",
        [
            "Write a haiku about the moon.",
            "Explain what a black hole is.",
            "Suggest a name for a bakery.",
        ],
    ),
    (
        "1) and (2) numbering",
        "Here are some tasks:\n1) Summarize the paragraph below.\n(2) Give an antonym of 'cold'.",
        ["Summarize the paragraph below.", "Give an antonym of 'cold'."],
    ),
    (
        "bold numbers",
        "**1.** Describe a sunset.\n**2.** List the planets in order.",
        ["Describe a sunset.", "List the planets in order."],
    ),
    (
        "bold titles before a colon",
        "1. **Poem**: Write a limerick about a frog.\n2. **Math:** What is 12 times 12?\n"
        "3. **Translation** - Translate 'thank you' into Japanese.",
        [
            "Write a limerick about a frog.",
            "What is 12 times 12?",
            "Translate 'thank you' into Japanese.",
        ],
    ),
    (
        "bold title line, text on the next line",
        "1. **Creative writing**\n   Write a short story about a lost key.\n"
        "2. **Reasoning**\n   Explain why the sky is blue.",
        ["Write a short story about a lost key.", "Explain why the sky is blue."],
    ),
    (
        "whole item in bold",
        "1. **Write a haiku about winter.**\n2. *Explain recursion simply.*",
        ["Write a haiku about winter.", "Explain recursion simply."],
    ),
    (
        "dash, star and dot bullets",
        "- Write a poem about rain\n* Summarize the text below\n• Translate 'hello' into Greek",
        ["Write a poem about rain", "Summarize the text below", "Translate 'hello' into Greek"],
    ),
    (
        "lettered lists",
        "a) Write a poem about rain.\nb) Name the largest ocean.\n"
        "(c) Rewrite the sentence politely.",
        ["Write a poem about rain.", "Name the largest ocean.", "Rewrite the sentence politely."],
    ),
    (
        "capital letter list",
        "A. Find the odd word out.\nB. Suggest a title for the essay.",
        ["Find the odd word out.", "Suggest a title for the essay."],
    ),
    (
        "Task 1: style in a chat reply",
        "Task 1: Write a tweet about recycling.\nTask 2: Describe a rainbow to a blind person.",
        ["Write a tweet about recycling.", "Describe a rainbow to a blind person."],
    ),
    (
        "Instruction: blocks with Input/Output",
        "Instruction: Write a poem about spring.\nInput: <noinput>\nOutput: Blossoms everywhere\n\n"
        "Instruction: Sort the list.\nInput: [3, 1, 2]\nOutput: [1, 2, 3]",
        ["Write a poem about spring.", "Sort the list."],
    ),
    (
        "numbered items with Instruction:/Input: lines",
        "1. Instruction: Classify the animal as mammal or bird.\n   Input: penguin\n"
        "2. Instruction: Give a synonym.\n   Input: quick\n   Output: fast",
        ["Classify the animal as mammal or bird.", "Give a synonym."],
    ),
    (
        "markdown headers per task",
        "## New tasks\n\n### Task 1\nWrite a poem about cats.\n\n### Task 2\n\nSummarize the news.",
        ["Write a poem about cats.", "Summarize the news."],
    ),
    (
        "markdown header with the task text",
        "### 1. Write a riddle about time.\n### 2. Explain inflation in one paragraph.",
        ["Write a riddle about time.", "Explain inflation in one paragraph."],
    ),
    (
        "quotes around items",
        '1. "Write a story about a dragon."\n2. \u201cExplain photosynthesis.\u201d\n'
        "3. 'Name a mammal that lays eggs.'",
        [
            "Write a story about a dragon.",
            "Explain photosynthesis.",
            "Name a mammal that lays eggs.",
        ],
    ),
    (
        "quotes inside an item stay",
        '1. "Hello" and "goodbye": translate both into Spanish.',
        ['"Hello" and "goodbye": translate both into Spanish.'],
    ),
    (
        "item spanning two lines is joined",
        "1. Write a story about\n   a dragon who loves tea.\n2. List three uses\nof baking soda.",
        ["Write a story about a dragon who loves tea.", "List three uses of baking soda."],
    ),
    (
        "blank lines between items",
        "1. Describe a forest.\n\n2. Name five birds.\n\n\n3. Rewrite the paragraph below.",
        ["Describe a forest.", "Name five birds.", "Rewrite the paragraph below."],
    ),
    (
        "Example: block after an item",
        "1. Convert the temperature to Celsius.\n   Example: 98.6F -> 37C\n2. Name a verb.",
        ["Convert the temperature to Celsius.", "Name a verb."],
    ),
    (
        "nested sub-bullets of a task are dropped",
        "1. Plan a three-day trip to Rome.\n   - Day 1: Colosseum\n   - Day 2: Vatican\n"
        "2. Give advice on saving money.",
        ["Plan a three-day trip to Rome.", "Give advice on saving money."],
    ),
    (
        "options of a task are dropped",
        "1. Pick the odd one out:\n   a) apple\n   b) banana\n   c) car\n2. Define entropy.",
        ["Pick the odd one out:", "Define entropy."],
    ),
    (
        "an input block after a colon is dropped",
        "1. Classify the sentiment of the tweet:\nI love this phone!\n2. Name a river in Africa.",
        ["Classify the sentiment of the tweet:", "Name a river in Africa."],
    ),
    (
        "category headings: their sub-items are the tasks",
        "1. **Creative writing**\n   - Write a poem about rain.\n   - Write a fable about a fox.\n"
        "2. **Math**\n   - Solve 2x + 3 = 7.",
        ["Write a poem about rain.", "Write a fable about a fox.", "Solve 2x + 3 = 7."],
    ),
    (
        "bold section headers between items",
        "**Writing**\n1. Write an ode to coffee.\n**Math**\n2. What is 7 squared?",
        ["Write an ode to coffee.", "What is 7 squared?"],
    ),
    (
        "code fence inside an item is dropped",
        "1. Fix the bug in this function:\n```python\ndef f(x):\n    return x +\n```\n"
        "2. Explain what a closure is.",
        ["Fix the bug in this function:", "Explain what a closure is."],
    ),
    (
        "numbered lines inside an input block are not tasks",
        "1. Sort the grocery list alphabetically.\nInput:\n1. milk\n2. eggs\n3. apples\n"
        "2. Describe your morning routine.",
        ["Sort the grocery list alphabetically.", "Describe your morning routine."],
    ),
    (
        "explanation paragraphs under items are dropped",
        "1. Write a haiku about autumn.\n\n   This tests creativity within constraints.\n\n"
        "2. Explain quantum tunneling simply.\n\n   This tests explanation skills.",
        ["Write a haiku about autumn.", "Explain quantum tunneling simply."],
    ),
    (
        "chatter line right after the last item",
        "1. Describe a rainbow.\n2. Name a prime number.\nLet me know if you need more tasks!",
        ["Describe a rainbow.", "Name a prime number."],
    ),
    (
        "horizontal rules and trailing notes",
        "Here are your tasks:\n---\n1. Write a thank-you note.\n2. Plan a picnic menu.\n---\n"
        "Note: these tasks vary in difficulty.",
        ["Write a thank-you note.", "Plan a picnic menu."],
    ),
    (
        "empty items are dropped",
        "1. Write a riddle.\n2.\n3.   \n4. Describe a city at night.",
        ["Write a riddle.", "Describe a city at night."],
    ),
    (
        "unicode bullets and curly quotes",
        "◦ Give an example of irony.\n‣ Explain the rule of thirds.",
        ["Give an example of irony.", "Explain the rule of thirds."],
    ),
    (
        "unnumbered tasks one per line",
        "Write a haiku about snow.\nExplain how vaccines work.\n"
        "List three renewable energy sources.",
        [
            "Write a haiku about snow.",
            "Explain how vaccines work.",
            "List three renewable energy sources.",
        ],
    ),
    (
        "preamble paragraph, then unnumbered tasks",
        "Here are the new tasks:\n\nWrite a haiku about snow.\nExplain how vaccines work.",
        ["Write a haiku about snow.", "Explain how vaccines work."],
    ),
    (
        "SmolLM2: bullets with 'Task N:' inside and a preamble",
        "Here's the 5-point list of tasks with numbered list format:\n\n"
        "* Task 1: Provide 5 tips for staying healthy\n"
        "* Task 2: Sort the given list of numbers in ascending order\n"
        "* Task 3: Write a haiku about autumn leaves",
        [
            "Provide 5 tips for staying healthy",
            "Sort the given list of numbers in ascending order",
            "Write a haiku about autumn leaves",
        ],
    ),
    (
        "SmolLM2: outline numbers and lettered sub-items",
        "1. 1.1.1.1: Give three tips for staying healthy\n   a. 1.1.2.1: Use a personal touch\n"
        "   b. 1.1.3.1: Create something awesome\n2. 2.1.1: Sort a list of numbers in ascending "
        "order\n   a. 2.1.2.1: List numbers in descending order\n3. 3.1.1: Classify the "
        "sentiment of a tweet",
        [
            "Give three tips for staying healthy",
            "Sort a list of numbers in ascending order",
            "Classify the sentiment of a tweet",
        ],
    ),
    (
        "SmolLM2: Example: lines between numbered items",
        "1. Give three tips for staying healthy:\na) To prepare for a bad luck night.\nb) To "
        'prepare for a bad luck night.\n\nExample: "1. Provide a meal at a local café."\n'
        "2. Sort the given list of numbers in ascending order:\na) To make a list of numbers.\n\n"
        'Example: "2. Choose a new smartphone model."\nExample: "3. Provide a new smartphone '
        'model."\n4. Write a haiku about autumn leaves:\nf) In the heart of the autumn leaves.\n\n'
        "Each task is one or two sentences.",
        [
            "Give three tips for staying healthy:",
            "Sort the given list of numbers in ascending order:",
            "Write a haiku about autumn leaves:",
        ],
    ),
    (
        "SmolLM2: 'Sure, here are ...' then a plain numbered list",
        "Sure, here are ten new tasks to help with your project:\n1. Write a haiku about autumn "
        "leaves.\n2. Is the following number prime?\n3. Suggest a name for a new coffee shop.",
        [
            "Write a haiku about autumn leaves.",
            "Is the following number prime?",
            "Suggest a name for a new coffee shop.",
        ],
    ),
    (
        "SmolLM2: a reply with no task at all",
        "Please add 10 more tasks to the list of 10.",
        ["Please add 10 more tasks to the list of 10."],
    ),
    ("empty reply", "", []),
    ("whitespace only", "  \n\t\n ", []),
    ("only chatter", "I hope these help! Let me know if you need anything else.", []),
    ("only a preamble", "Sure! Here are 5 new tasks:", []),
    ("punctuation only items", "1. ...\n2. ---\n3. Describe a tree.", ["Describe a tree."]),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in TASK_LIST_CASES],
    ids=[case[0] for case in TASK_LIST_CASES],
)
def test_parse_task_list(text: str, expected: list[str]) -> None:
    assert parse_task_list(text) == expected


TRUNCATED_CASES: list[tuple[str, str, list[str]]] = [
    (
        "cut mid-item",
        "Write a poem.\nTask 10: Describe the sky.\nTask 11: Write a story about a",
        ["Write a poem.", "Describe the sky."],
    ),
    (
        "cut right after the label: the empty item is the one dropped",
        "Write a poem.\nTask 10: Describe the sky.\nTask 11:",
        ["Write a poem.", "Describe the sky."],
    ),
    (
        "chat list cut mid-item",
        "Sure! Here are 10 tasks:\n1. Name a fruit.\n2. Explain gravity.\n3. Write a son",
        ["Name a fruit.", "Explain gravity."],
    ),
    (
        "cut inside the last item's example block",
        "1. Name a fruit.\n2. Sort the list.\nInput: 3, 1,",
        ["Name a fruit."],
    ),
    ("single cut item", "Write a poem about", []),
    (
        "SmolLM2: numbered list cut in an option line",
        "1. Provide 10 tips for staying healthy:\nA) Healthy Eating; B) Regular Exercise\n"
        "2. Sort the given list of numbers in ascending order:\nA) 3, 4, 5, 6, 7, 8, 9, 10, 11, ",
        ["Provide 10 tips for staying healthy:"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in TRUNCATED_CASES],
    ids=[case[0] for case in TRUNCATED_CASES],
)
def test_parse_task_list_truncated_drops_the_last_item(text: str, expected: list[str]) -> None:
    assert parse_task_list(text, truncated=True) == expected


def test_parse_task_list_not_truncated_keeps_the_last_item() -> None:
    text = "Write a poem.\nTask 10: Describe the sky.\nTask 11: Write a story about a"
    assert parse_task_list(text)[-1] == "Write a story about a"


# ---------------------------------------------------------------- parse_yes_no

YES_NO_CASES = [
    ("Yes", True),
    (" yes.", True),
    ("YES", True),
    ("No", False),
    (" no", False),
    ("No, it is not", False),
    ("No.\nTask: Sort the list.", False),
    ("Yes - it has finite labels", True),
    ("**Yes**", True),
    ("**No**.", False),
    ("Answer: No", False),
    ("Answer: Yes, the labels are positive and negative.", True),
    ("A: yes", True),
    ("Is it classification? Yes", True),
    ('"Yes"', True),
    ("\n\n  Yes\n", True),
    ("Yes!", True),
    ("No; it is open-ended.", False),
    ("Maybe", None),
    ("", None),
    ("   ", None),
    ("Nope", None),
    ("Not sure", None),
    ("Yesterday", None),
    ("None", None),
    ("Absolutely", None),
    ("It depends.", None),
    ("I think yes", None),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO_CASES)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


# ---------------------------------------------------------------- parse_inputs

INPUT_CASES: list[tuple[str, str, list[str]]] = [
    (
        "one continuation input",
        " The quick brown fox jumps over the lazy dog.",
        ["The quick brown fox jumps over the lazy dog."],
    ),
    (
        "continuation then more Input: lines",
        " 5, 2, 9, 1\nInput: 10, -3, 7\nInput: 42",
        ["5, 2, 9, 1", "10, -3, 7", "42"],
    ),
    (
        "no-input markers",
        " <noinput>",
        [""],
    ),
    ("None.", "None.", [""]),
    ("N/A", " N/A", [""]),
    ("<no input>", "<no input>", [""]),
    ("No input needed", "No input needed.", [""]),
    ("null", "null", [""]),
    ("dash", " -", [""]),
    ("empty reply", "", []),
    ("blank reply", "  \n \n", []),
    (
        "Example headers before Input:",
        "Example 1\nInput: Hello there.\n\nExample 2:\nInput: Good night.",
        ["Hello there.", "Good night."],
    ),
    (
        "outputs after inputs are ignored",
        " I loved the film.\nOutput: positive\n\nInput: It was boring.\nOutput: negative",
        ["I loved the film.", "It was boring."],
    ),
    (
        "multi-line email keeps its newlines",
        "\nDear team,\n\nThe meeting moves to Friday at 3pm.\n\nBest,\nAnna\nInput: Hi Bob, "
        "can you send the report?",
        [
            "Dear team,\n\nThe meeting moves to Friday at 3pm.\n\nBest,\nAnna",
            "Hi Bob, can you send the report?",
        ],
    ),
    (
        "code input keeps indentation",
        "\ndef add(a, b):\n    return a - b\n\nInput: print('hi'",
        ["def add(a, b):\n    return a - b", "print('hi'"],
    ),
    (
        "labels inside a code fence are code",
        "Input:\n```python\nname = input('Input: ')\nprint('Output: ' + name)\n```\nOutput: x",
        ["```python\nname = input('Input: ')\nprint('Output: ' + name)\n```"],
    ),
    (
        "ends at a Task: line",
        " Paris is the capital of France.\nTask: Summarize the text.\nInput: Ignore me.",
        ["Paris is the capital of France."],
    ),
    (
        "ends at a Class label: line",
        " What is 2 + 2?\nClass label: math",
        ["What is 2 + 2?"],
    ),
    ("repeats are dropped", " red\nInput: blue\nInput: red\nInput: blue", ["red", "blue"]),
    (
        "limit",
        " a1\nInput: b2\nInput: c3\nInput: d4",
        ["a1", "b2"],
    ),
    (
        "an Input: cut by the stop sequence is not an empty input",
        " The sky is blue.\nInput:",
        ["The sky is blue."],
    ),
    (
        "an Output: right away means no input",
        "\nOutput: Drink water, sleep well, exercise.",
        [""],
    ),
    (
        "chat preamble and numbered Input labels",
        "Sure! Here are 3 inputs for the task:\n\nInput 1: The cat sat on the mat.\n"
        "Input 2: Dogs bark at night.\n\nI hope these help!",
        ["The cat sat on the mat.", "Dogs bark at night."],
    ),
    (
        "bold labels",
        "**Input:** I can't log in.\n**Output:** Reset your password.\n**Input:** Refund please.",
        ["I can't log in.", "Refund please."],
    ),
    (
        "Example N: with the input on the same line",
        "Example 1: The movie was great.\nExample 2: The service was slow.",
        ["The movie was great.", "The service was slow."],
    ),
    (
        "CRLF",
        " first input\r\nInput: second input\r\nOutput: x\r\n",
        ["first input", "second input"],
    ),
    (
        "mixed no-input and real inputs",
        " None\nInput: 12 apples\nInput: none",
        ["", "12 apples"],
    ),
    (
        "### separator ends the input",
        " The train leaves at 5.\n###\nInstruction: Something else.",
        ["The train leaves at 5."],
    ),
    (
        "SmolLM2: quoted input with an emoji",
        ' "😅 I\'m here to help with your creative writing!"',
        ["😅 I'm here to help with your creative writing!"],
    ),
    (
        "SmolLM2: input then an Output echo",
        " (To: Smith, from: <jimmyjim>; date: <15/12/2020>)\nOutput: (To: Smith, from: "
        "<jimmyjim>; date: <15/12/2020>)",
        ["(To: Smith, from: <jimmyjim>; date: <15/12/2020>)"],
    ),
    (
        "SmolLM2: chat reply with a meta preamble",
        'The given email contains multiple sentences, each starting with "Input:". Here are '
        'three example inputs that can help with the task:\n\nInput: "Hello, I recently '
        'purchased a tablet. Which gaming apps do you recommend?"',
        ["Hello, I recently purchased a tablet. Which gaming apps do you recommend?"],
    ),
    (
        "SmolLM2: only a Task: echo and an output",
        "Task: Summarize the following email.\nOutput: This is a summary of the email.",
        [],
    ),
]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [(case[1], 2 if case[0] == "limit" else 5, case[2]) for case in INPUT_CASES],
    ids=[case[0] for case in INPUT_CASES],
)
def test_parse_inputs(text: str, limit: int, expected: list[str]) -> None:
    assert parse_inputs(text, limit=limit) == expected


def test_parse_inputs_zero_limit() -> None:
    assert parse_inputs(" a\nInput: b", limit=0) == []


@pytest.mark.parametrize(
    "marker",
    [
        "",
        "None",
        "none.",
        "N/A",
        "n/a",
        "<noinput>",
        "<no input>",
        "No input",
        "No input needed",
        "null",
        "-",
        "NONE",
        "(none)",
        '"None"',
        "<No Input>",
    ],
)
def test_is_no_input(marker: str) -> None:
    assert is_no_input(marker)


@pytest.mark.parametrize("text", ["0", "no", "Nonetheless", "- item", "null pointer", "N/Asia"])
def test_is_not_no_input(text: str) -> None:
    assert not is_no_input(text)


# ------------------------------------------------------ parse_label_input_pairs

PAIR_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "continuation label, then more pairs",
        " Positive\nInput: I loved every minute.\n\nClass label: Negative\nInput: Waste of time.",
        [("Positive", "I loved every minute."), ("Negative", "Waste of time.")],
    ),
    (
        "labels lose quotes and periods",
        ' "Spam."\nInput: You won a free cruise!\nClass label: **Not spam**\nInput: Lunch at 1?',
        [("Spam", "You won a free cruise!"), ("Not spam", "Lunch at 1?")],
    ),
    (
        "Label: synonym",
        " Yes\nInput: Is 7 prime?\nLabel: No\nInput: Is 8 prime?",
        [("Yes", "Is 7 prime?"), ("No", "Is 8 prime?")],
    ),
    (
        "Sentence:/Text:/Review:/Email: when no Input: label",
        " Positive\nSentence: Great food.\nClass label: Negative\nReview: Cold fries.\n"
        "Class label: Spam\nEmail: Click here now.\nClass label: Ham\nText: See you soon.",
        [
            ("Positive", "Great food."),
            ("Negative", "Cold fries."),
            ("Spam", "Click here now."),
            ("Ham", "See you soon."),
        ],
    ),
    (
        "Text: is content when Input: labels exist",
        " Formal\nInput: Text: Dear Sir or Madam,\nClass label: Informal\nInput: hey!",
        [("Formal", "Text: Dear Sir or Madam,"), ("Informal", "hey!")],
    ),
    (
        "no-input marker",
        " Fruit\nInput: <noinput>",
        [("Fruit", "")],
    ),
    (
        "empty label dropped",
        "\nInput: orphan input\nClass label: \nInput: another\nClass label: B\nInput: kept",
        [("B", "kept")],
    ),
    (
        "label on the line after Class label:",
        "Class label:\nSports\nInput: The Lakers won again.",
        [("Sports", "The Lakers won again.")],
    ),
    (
        "inline Input: on the label line",
        " Question Input: Where is the station?\nClass label: Statement Input: It rains.",
        [("Question", "Where is the station?"), ("Statement", "It rains.")],
    ),
    (
        "multi-line input",
        " Spam\nInput: Dear user,\nYour account is locked.\nClick here.\nClass label: Ham\n"
        "Input: See you at lunch.",
        [
            ("Spam", "Dear user,\nYour account is locked.\nClick here."),
            ("Ham", "See you at lunch."),
        ],
    ),
    (
        "a second Input: reuses the label",
        " Positive\nInput: Loved it.\nInput: Best day ever.",
        [("Positive", "Loved it."), ("Positive", "Best day ever.")],
    ),
    (
        "Output: lines are ignored, or give the label when it is missing",
        "Input: great movie\nOutput: Positive\n\nInput: awful movie\nOutput: Negative",
        [("Positive", "great movie"), ("Negative", "awful movie")],
    ),
    ("repeats dropped", " A\nInput: x\nClass label: A\nInput: x", [("A", "x")]),
    (
        "limit",
        " A\nInput: 1\nClass label: B\nInput: 2\nClass label: C\nInput: 3",
        [("A", "1"), ("B", "2")],
    ),
    (
        "chat preamble and Example headers",
        "Sure! Here are some examples:\n\nExample 1\nClass label: Positive\nInput: Nice!\n\n"
        "Example 2\nClass label: Negative\nInput: Meh.",
        [("Positive", "Nice!"), ("Negative", "Meh.")],
    ),
    (
        "a label with no input is dropped",
        " Positive\nInput: Yay!\nClass label: Negative",
        [("Positive", "Yay!")],
    ),
    ("empty reply", "", []),
    (
        "CRLF",
        " True\r\nInput: Water boils at 100C at sea level.\r\n"
        "Class label: False\r\nInput: Cats bark.",
        [("True", "Water boils at 100C at sea level."), ("False", "Cats bark.")],
    ),
    (
        "SmolLM2: repeated pair format",
        " Positive\nInput: I am a fan of this movie.\nClass label: Negative\nInput: I'm a fan of "
        "this movie.\n",
        [("Positive", "I am a fan of this movie."), ("Negative", "I'm a fan of this movie.")],
    ),
    (
        "SmolLM2: label without input, then commentary",
        " Not Positive\nClass label: Negative\nInput: I have no idea.\n\nThe last example of a "
        "task that uses an image as input, which is a classification task, but is not a class "
        "label.\n\nExample of a task that uses an image as input.",
        [("Negative", "I have no idea.")],
    ),
    (
        "SmolLM2: dangling label then an essay",
        " Positive\nInput: This is a great email.\nClass label: Negative\n\nThis is an example "
        "of a classification task that requires an input of a sentence.",
        [("Positive", "This is a great email.")],
    ),
    (
        "SmolLM2: Sentence N: then doubled Output: lines",
        'Task: Classify the sentiment of the review.\n\nSentence 1: "The new employee is very '
        'skilled."\nOutput: Positive sentiment\nOutput: Positive sentiment\n\nSentence 2: "The '
        'service was slow."\nOutput: Negative sentiment',
        [
            ("Positive sentiment", "The new employee is very skilled."),
            ("Negative sentiment", "The service was slow."),
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [(case[1], 2 if case[0] == "limit" else 5, case[2]) for case in PAIR_CASES],
    ids=[case[0] for case in PAIR_CASES],
)
def test_parse_label_input_pairs(text: str, limit: int, expected: list[tuple[str, str]]) -> None:
    assert parse_label_input_pairs(text, limit=limit) == expected


# ---------------------------------------------------------------- clean_output

OUTPUT_CASES: list[tuple[str, str, str]] = [
    ("plain continuation", " Paris", "Paris"),
    ("label", "Output: 42", "42"),
    ("doubled label", "Output: Output: 42", "42"),
    ("label on its own line", "Output:\nOutput: Bonjour", "Bonjour"),
    ("Answer: label", "Answer: The capital is Rome.", "The capital is Rome."),
    ("Response: label in bold", "**Response:** Sure thing.", "Sure thing."),
    (
        "cut at the next task",
        " Rome\n\nTask: Name the capital of Spain.\nOutput: Madrid",
        "Rome",
    ),
    ("cut at Task N:", "blue\nTask 12: Name a color.", "blue"),
    ("cut at Instruction:", "Fine.\nInstruction: Say hi.", "Fine."),
    ("cut at Input:", "4\nInput: 3 + 3\nOutput: 6", "4"),
    ("cut at an Example header", "It is 7.\n\nExample 2\nInput: x", "It is 7."),
    ("cut at ### separator", "Yes.\n###\nInstruction: more", "Yes."),
    ("cut at ### Instruction header", "Done.\n\n### Instruction:\nNext", "Done."),
    ("cut at a second Output:", "Bonjour\nOutput: Salut", "Bonjour"),
    (
        "a list output stays intact",
        "1. Drink water\n2. Sleep eight hours\n3. Walk daily",
        "1. Drink water\n2. Sleep eight hours\n3. Walk daily",
    ),
    (
        "code block stays intact, labels inside are code",
        "```python\ndef f():\n    print('Input: x')\n\n    return 1\n```",
        "```python\ndef f():\n    print('Input: x')\n\n    return 1\n```",
    ),
    (
        "markdown headers that are content stay",
        "### Ingredients\n- 2 eggs\n\n### Steps\n1. Whisk.",
        "### Ingredients\n- 2 eggs\n\n### Steps\n1. Whisk.",
    ),
    ("Example: with content stays", "Example: Time is a thief.", "Example: Time is a thief."),
    ("CRLF", "Output: line one\r\nline two\r\n\r\nTask: next", "line one\nline two"),
    ("trailing whitespace", "answer   \n\n\n", "answer"),
    ("only a label", "Output:", ""),
    ("empty", "", ""),
    ("starts with a new example", "Input: something\nOutput: else", ""),
    (
        "SmolLM2: repeated Output: lines",
        " Esteemedle ajuste la vida de la morte\n\nOutput: Esteemlle la vie de la morte\n\n"
        "Output: Esteemlle la vie de la morte",
        "Esteemedle ajuste la vida de la morte",
    ),
    (
        "SmolLM2: bullet answer, then another Output:",
        "\n* Keep yourself hydrated\n* Eat a balanced diet\n* Stay active\n\nOutput: 1. Drink "
        "a glass of wine.\n2. Eat a vegetarian meal.\n\nOutput:",
        "* Keep yourself hydrated\n* Eat a balanced diet\n* Stay active",
    ),
    (
        "SmolLM2: trailing bare Output:",
        " 1. Drink plenty of water\n2. Eat a balanced diet\n3. Regularly check the weather\n\n"
        "Output:",
        "1. Drink plenty of water\n2. Eat a balanced diet\n3. Regularly check the weather",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in OUTPUT_CASES],
    ids=[case[0] for case in OUTPUT_CASES],
)
def test_clean_output(text: str, expected: str) -> None:
    assert clean_output(text) == expected


# ------------------------------------------------------------------ properties

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400) | st.lists(
    st.sampled_from(
        [
            "Task 3:",
            "1.",
            "- ",
            "**",
            "Input:",
            "Output:",
            "Class label:",
            "Example 1",
            "```",
            "\n",
            "\r\n",
            "\n\n",
            " ",
            "a)",
            "(b)",
            "###",
            "None",
            "Yes",
            "No",
            ":",
            '"',
            "word",
            "Instruction:",
            "  - ",
            "Sure! Here are 3 tasks:",
            "I hope this helps",
            "2024",
        ]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, st.booleans())
def test_parsers_never_raise(text: str, truncated: bool) -> None:
    items = parse_task_list(text, truncated=truncated)
    assert all(item == item.strip() and item and "\n" not in item for item in items)
    assert parse_yes_no(text) in (True, False, None)
    inputs = parse_inputs(text, limit=3)
    assert len(inputs) <= 3 and len(set(inputs)) == len(inputs)
    pairs = parse_label_input_pairs(text, limit=3)
    assert len(pairs) <= 3 and all(label for label, _ in pairs)
    assert clean_output(text) == clean_output(text).strip()


_WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    min_size=1,
    max_size=10,
)
_TAIL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ,.?!-()'éü", max_size=40)
CLEAN_ITEM = st.builds(lambda head, tail: " ".join((head + tail).split()), _WORD, _TAIL)


@settings(max_examples=300, deadline=None)
@given(st.lists(CLEAN_ITEM, min_size=1, max_size=12))
def test_numbered_list_round_trips(items: list[str]) -> None:
    text = "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))
    assert parse_task_list(text) == items
    assert parse_task_list(text, truncated=True) == items[:-1]


@settings(max_examples=200, deadline=None)
@given(st.lists(CLEAN_ITEM, min_size=1, max_size=8))
def test_task_continuation_round_trips(items: list[str]) -> None:
    # a continuation that itself starts like "3) ..." or "b. ..." is read as list numbering
    assume(not re.match(r"^\(?[0-9A-Za-z]{1,3}[.):]", items[0]))
    text = " " + items[0] + "".join(f"\nTask {n}: {item}" for n, item in enumerate(items[1:], 10))
    assert parse_task_list(text) == items


@settings(max_examples=200, deadline=None)
@given(st.lists(CLEAN_ITEM, min_size=1, max_size=6, unique=True))
def test_input_blocks_round_trip(inputs: list[str]) -> None:
    text = " " + inputs[0] + "".join(f"\nInput: {item}" for item in inputs[1:])
    expected = ["" if is_no_input(item) else item for item in inputs]
    assert parse_inputs(text, limit=10) == list(dict.fromkeys(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Write a poem.\n", "Write a poem."),
        ("**Write** a *short* poem.", "Write a short poem."),
        ("Compute 2*3*4 in __init__.", "Compute 2*3*4 in __init__."),
        ("**Write a poem about", "Write a poem about"),
        ("Write a poem about**", "Write a poem about"),
    ],
)
def test_strip_emphasis_removes_markdown_and_only_that(text: str, expected: str) -> None:
    assert strip_emphasis(text) == expected
