"""Importing spreadsheets into an entity (no Flask): reading a sheet within limits, cells
to values, all rows or none through the records service, and large files in the background.

`sheets` reads (.xlsx through `xlsx`, which measures a sheet before openpyxl parses it, and
.csv); `cells` turns a cell into a field's value; `lines` groups rows into records with line
items; `run` saves them; `jobs` keeps uploads and runs large ones in `formwork worker`.
"""
