"""City vital signs: indicators declared once (``registry``), computed by pure formulas and rolled up (``engine``)."""
