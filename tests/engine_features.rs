//! Lab tests for engine_features (being written).
