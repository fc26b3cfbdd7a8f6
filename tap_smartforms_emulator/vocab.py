"""Words, names and strings the generated forms are made of.

The messy pools hold what real submissions contain: accents, CJK, right-to-left
scripts, emoji with skin tones and zero-width joiners, quotes, backslashes,
newlines, markup and SQL-looking text.
"""

from __future__ import annotations

import random

MESSY_PHRASES: tuple[str, ...] = (
    "Café au lait — naïve résumé",
    "Ünïcödé: Straße, Ærøskøbing, Łódź, İstanbul",
    "東京オフィスの新入社員です",
    "请在周五之前完成入职培训",
    "한국어 답변입니다",
    "مرحبا بالعالم، هذا نص تجريبي",
    "שלום עולם, זה טקסט לבדיקה",
    "mixed עברית and English ١٢٣ digits",
    "Thumbs up 👍🏽 and a developer 👩‍💻",
    "Family 👨‍👩‍👧‍👦, flag 🇺🇦, rainbow 🏳️‍🌈",
    'He said "ship it" and left',
    "it's the team's 'best' idea",
    "«guillemets» and „German quotes“",
    "C:\\Users\\ada\\Documents\\contract.pdf",
    "a literal \\n is not a newline",
    "first line\nsecond line\r\nthird line",
    "tab\tseparated\tvalues",
    "Robert'); DROP TABLE students;--",
    "<b>bold</b> &amp; <script>alert(1)</script>",
    "zero\u200bwidth space and non\u00a0breaking",
    "combining e\u0301 versus precomposed é",
    "   leading and trailing spaces   ",
    "Ω≈ç√∫\u02dcµ≤≥÷ ∑ ∞",  # \u02dc: small tilde
    '{"looks": "like json"}',
    "null",
    "100%",
    "",
)

PLAIN_WORDS: tuple[str, ...] = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
)  # fmt: skip

FIRST_NAMES: tuple[str, ...] = (
    "Ada", "José", "Zoë", "Łukasz", "Søren", "Ngozi", "Aarav", "Mei",
    "陈伟", "佐藤 花子", "김민준", "محمد", "נועה", "Renée", "O'Brien", "Björk",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Lovelace", "Núñez", "Ødegaard", "Wiśniewska", "van der Berg", "Okafor",
    "Sharma", "de la Cruz", "Müller-Lüdenscheidt", "Smith \"Smitty\"", "Ali", "Cohen",
)  # fmt: skip

FORM_NAMES: tuple[str, ...] = (
    "Employee onboarding",
    "IT equipment request 💻",
    "Customer feedback — Q1",
    "Bug report / Fehlerbericht",
    "お問い合わせフォーム",
    "طلب إجازة",
    'Vendor "security" questionnaire',
    "Offboarding checklist",
)

QUESTION_LABELS: dict[str, tuple[str, ...]] = {
    "text": ("Full name", "Job title", "Team / équipe", "名前"),
    "paragraph": ("Describe the problem", "Anything else? 🙂", "Commentaires détaillés"),
    "number": ("Budget (EUR)", "How many seats?", "Score"),
    "date": ("Start date", "Due date", "Date de début"),
    "datetime": ("When did it happen?", "Meeting time"),
    "select": ("Department", "Priority", "Office"),
    "radio": ("Employment type", "Preferred contact"),
    "multiselect": ("Equipment", "Languages spoken", "Affected systems"),
    "checkbox": ("I accept the policy", "Signed NDA?"),
    "user": ("Manager", "Buddy"),
    "email": ("Work e-mail", "Contact email"),
    "url": ("Portfolio link", "Ticket URL"),
    "rating": ("How satisfied are you?", "Rate the onboarding"),
    "attachment": ("Signed contract", "Screenshots"),
}

OPTION_LABELS: tuple[str, ...] = (
    "Laptop", "Phone", "Monitor 27\"", "Headset 🎧", "Engineering", "HR",
    "Finance & Legal", "Ventes (FR)", "営業", "الدعم", "Remote", "On-site", "Other…",
)  # fmt: skip

FILE_NAMES: tuple[str, ...] = (
    "contract.pdf",
    "screenshot 2026-01-15 at 14.23.45.png",
    "résumé final (v2).docx",
    "報告書.xlsx",
    "تقرير.pdf",
    "no_extension",
    "weird 'name' \"quoted\".txt",
    "emoji 🎉.gif",
)

MIME_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain; charset=utf-8",
    "gif": "image/gif",
}

ISSUE_STATUSES: tuple[str, ...] = ("To Do", "In Progress", "Done", "Won't do", "En cours")
PROJECT_KEYS: tuple[str, ...] = ("HR", "IT", "OPS", "SEC", "FIN")


def mime_type_for(file_name: str) -> str:
    """The MIME type a file's extension suggests (``application/octet-stream`` if none)."""
    _, dot, extension = file_name.rpartition(".")
    return MIME_TYPES.get(extension.lower() if dot else "", "application/octet-stream")


def messy_phrase(rng: random.Random) -> str:
    """One messy phrase, sometimes two glued together."""
    phrase = rng.choice(MESSY_PHRASES)
    if rng.random() < 0.25:
        phrase = f"{phrase} {rng.choice(MESSY_PHRASES)}"
    return phrase


def messy_paragraph(rng: random.Random, long: bool) -> str:
    """Several messy lines; 2 to 20 KB of them when ``long``."""
    if not long:
        return "\n".join(messy_phrase(rng) for _ in range(rng.randint(2, 5)))
    target = rng.randint(2_000, 20_000)
    lines: list[str] = []
    size = 0
    while size < target:
        line = messy_phrase(rng)
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def person_name(rng: random.Random) -> str:
    """A display name from many scripts."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def account_id(rng: random.Random) -> str:
    """An Atlassian account id in one of its two shapes."""
    if rng.random() < 0.5:
        return f"{rng.getrandbits(96):024x}"
    return f"712020:{uuid_like(rng)}"


def uuid_like(rng: random.Random) -> str:
    """A UUID-shaped hex string drawn from ``rng`` (deterministic, unlike uuid4)."""
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
