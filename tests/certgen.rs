//! Lab tests for certgen (being written).
