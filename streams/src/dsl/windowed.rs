//! Windowed groupings: `KGroupedStream::windowed_by` with time, sliding or session windows.

use crate::dsl::grouped::KGroupedStream;
use crate::task::node::Data;

/// A window definition a grouped stream can be windowed by (time, sliding or session
/// windows); each gives its own windowed stream type (Kafka's overloads of `windowedBy`).
pub trait WindowedBy<'b, K, V> {
    /// The windowed stream this definition gives.
    type Output;
    /// Windows `grouped` (called by [`KGroupedStream::windowed_by`]).
    fn windowed(self, grouped: &KGroupedStream<'b, K, V>) -> Self::Output;
}

/// When a windowed aggregation emits (Kafka's `EmitStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    /// Every update (through the cache): Kafka's default.
    #[default]
    OnWindowUpdate,
    /// Only the final result, once the window closes (`window end <= stream time - grace`).
    OnWindowClose,
}

impl<'b, K: Data, V: Data> KGroupedStream<'b, K, V> {
    /// Windows the grouping (Kafka's `windowedBy`): [`TimeWindows`](crate::TimeWindows),
    /// [`SlidingWindows`](crate::SlidingWindows) or [`SessionWindows`](crate::SessionWindows).
    pub fn windowed_by<W: WindowedBy<'b, K, V>>(&self, windows: W) -> W::Output {
        windows.windowed(self)
    }
}
