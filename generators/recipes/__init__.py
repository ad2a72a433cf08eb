"""Synthetic-data recipes, each a Stage: nemotron_cc, mind, beyondweb."""

RECIPES = {
    "nemotron_cc": "generators.recipes.nemotron_cc",
    "mind": "generators.recipes.mind",
    "beyondweb": "generators.recipes.beyondweb",
}
