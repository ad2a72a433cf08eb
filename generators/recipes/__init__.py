"""Synthetic-data recipes, each a Stage: nemotron_cc, mind, beyondweb."""

RECIPES = {
    "nemotron_cc": "dataengine.generators.recipes.nemotron_cc",
    "mind": "dataengine.generators.recipes.mind",
    "beyondweb": "dataengine.generators.recipes.beyondweb",
}
