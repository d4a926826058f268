//! The DSL: builder, streams, tables, groupings and their options.

pub(crate) mod branch;
pub(crate) mod builder;
pub(crate) mod global;
pub(crate) mod graph;
pub(crate) mod grouped;
pub(crate) mod join;
pub(crate) mod kstream;
pub(crate) mod ktable;
pub(crate) mod options;
pub(crate) mod session;
pub(crate) mod suppress;
pub(crate) mod table;
pub(crate) mod windowed;
