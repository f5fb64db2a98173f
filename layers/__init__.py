"""Map layer data handling (loading, cleaning, storage); free of any UI library."""
