//! Unit and property tests of the routing module.

mod matchers;
mod parse;
mod path;
mod props;
mod regex;
mod router;
mod support;
