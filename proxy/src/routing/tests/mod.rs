//! Unit and property tests of the routing module.

mod alloc;
mod matchers;
mod parse;
mod path;
mod props;
mod regex;
mod router;
mod support;
mod v2;
