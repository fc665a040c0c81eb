//! Layer 1: the hub's picture of the house, the messages it takes in and the effects a decision produces, as pure data.

pub mod catalog;
pub mod chime;
pub mod effects;
pub mod house;
pub mod input;
pub mod logbook;
pub mod readings;
pub mod role;
