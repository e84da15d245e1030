"""The metrics page generated from the tag data: tables, corrections of the hand-copied page, user results,
plots."""
