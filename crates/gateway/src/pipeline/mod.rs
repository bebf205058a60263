//! Every gateway decision, once: both codecs (hyper's and the direct
//! path's) read a message into these and apply what they decide.

pub(crate) mod request;
