//! Operators as task nodes: one file per operator family.

pub(crate) mod aggregate;
pub(crate) mod branch;
pub(crate) mod fixed_key;
pub(crate) mod fk_join;
pub(crate) mod front;
pub(crate) mod global;
pub(crate) mod session_aggregate;
pub(crate) mod sink;
pub(crate) mod sliding_aggregate;
pub(crate) mod source;
pub(crate) mod stateless;
pub(crate) mod stream_join;
pub(crate) mod stream_table_join;
pub(crate) mod suppress;
pub(crate) mod table_aggregate;
pub(crate) mod table_join;
pub(crate) mod table_ops;
pub(crate) mod table_source;
pub(crate) mod window_aggregate;
