//! Routing: rule language and matching.
