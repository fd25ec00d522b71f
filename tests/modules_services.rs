//! Lab tests for modules_services (being written).
