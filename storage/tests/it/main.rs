//! Integration tests for argus-storage.

mod blocks;
mod common;
mod crash;
mod db;
mod model;
