//! Tests of the static and dynamic models through their public entry
//! points: both syntaxes, messages with positions, defaults, merging; and
//! of the decoder on schemas still to come.

mod aggregate;
mod dynamic;
mod files;
mod kv;
mod props;
mod schemas;
mod static_config;
mod support;
