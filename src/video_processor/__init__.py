"""PlanOpticon: pull meeting recordings and documents into an analysis pipeline."""
