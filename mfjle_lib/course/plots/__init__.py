"""course.plots."""
