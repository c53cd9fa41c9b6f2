//! Request fixtures shared by the routing tests.
