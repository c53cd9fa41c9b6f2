//! Configuration: parse, validate, compile.
