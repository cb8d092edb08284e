//! Posts, likes, reposts and timelines on CQL (not built yet).
