"""Generate examples/reviews.csv: ~300 realistic product reviews, deterministically.

    python examples/make_reviews.py            # rewrites examples/reviews.csv

Same seed, same file: the examples and the README's numbers stay reproducible. The mix is
deliberate: short and long reviews, every rating, non-ASCII text (accents, CJK, emoji) and a
few multi-line reviews that need CSV quoting, so a first run meets what real exports hold.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20260507
ROWS = 300
OUT = Path(__file__).with_name("reviews.csv")

PRODUCTS = [
    "AeroPress Go coffee maker", "Trailblazer 40L hiking backpack", "Lumen desk lamp", "QuietComfort earbuds",
    "Nimbus robot vacuum", "Kettle Pro electric kettle", "Atlas standing desk", "Pixel-perfect 27\" monitor",
    "Sprout kids' water bottle", "Forge cast-iron skillet", "Zephyr box fan", "Orbit wireless charger",
]
OPENERS = {
    5: ["Absolutely love it.", "Best purchase this year.", "Exceeded every expectation.", "Five stars, no question."],
    4: ["Really good overall.", "Very happy with this.", "Solid product.", "Does the job well."],
    3: ["It's okay.", "Mixed feelings.", "Average at best.", "Fine, nothing special."],
    2: ["Disappointed.", "Not what I hoped for.", "Meh.", "Wouldn't buy again."],
    1: ["Terrible.", "Broke within a week.", "Total waste of money.", "Do not buy."],
}
GOOD = ["setup took two minutes", "the build quality feels premium", "battery lasts for days",
        "it is whisper quiet", "shipping was fast", "customer service answered within an hour",
        "the instructions were clear", "it looks great on my desk", "cleaning it is easy"]
BAD = ["the lid cracked after a few uses", "it arrived with a scratch", "the app keeps disconnecting",
       "it is much louder than advertised", "the strap frayed quickly", "support never replied",
       "the color is nothing like the photos", "it overheats after twenty minutes", "a part was missing"]
NEUTRAL = ["it is about what you would expect for the price", "my partner likes it more than I do",
           "I use it a couple of times a week", "it replaced an older model", "the box was bigger than needed"]
NON_ASCII = [
    "Très bien, je le recommande à mes amis.", "Funktioniert einwandfrei, schnelle Lieferung.",
    "Muy práctico y fácil de limpiar.", "とても使いやすいです。", "품질이 아주 좋아요.", "Отличный товар, спасибо!",
    "Great value 👍", "Perfect for my café ☕", "Ótimo custo-benefício.", "Naïve me expected more — still fine.",
]


def review(rng: random.Random) -> tuple[str, int, str]:
    rating = rng.choices([5, 4, 3, 2, 1], weights=[30, 25, 15, 12, 18])[0]
    pool = GOOD if rating >= 4 else BAD if rating <= 2 else NEUTRAL + GOOD[:2] + BAD[:2]
    n = rng.choice([0, 1, 1, 2, 2, 3, 5, 8])  # mostly short, some long
    parts = [rng.choice(OPENERS[rating])]
    parts += [s[0].upper() + s[1:] + "." for s in rng.sample(pool, min(n, len(pool)))]
    if rng.random() < 0.12:
        parts.append(rng.choice(NON_ASCII))
    text = " ".join(parts)
    if rng.random() < 0.025:  # a pasted review with line breaks and quotes: needs CSV quoting
        text = text.replace(". ", '.\n', 2) + '\nUpdate: the "replacement" works, so far.'
    return rng.choice(PRODUCTS), rating, text


def main() -> None:
    rng = random.Random(SEED)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "product", "rating", "text"])
        for i in range(1, ROWS + 1):
            product, rating, text = review(rng)
            w.writerow([f"R{i:04d}", product, rating, text])
    print(f"wrote {ROWS} reviews to {OUT}")


if __name__ == "__main__":
    main()
