//! Head + WAL against a BTreeMap model.
