//! Integration tests for argus-storage.

mod blocks;
mod common;
mod crash;
mod db;
mod hardening;
mod head_chunks;
mod histograms;
mod model;
