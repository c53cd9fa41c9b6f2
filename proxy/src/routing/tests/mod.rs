//! Unit and property tests of the routing module.

mod support;
