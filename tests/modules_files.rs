//! Lab tests for modules_files (being written).
