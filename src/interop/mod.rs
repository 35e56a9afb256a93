//! Weight files of other frameworks, converted to and from the crate's layout.

pub mod tensors;
pub mod torch;
