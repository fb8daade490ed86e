//! Crash safety: a child process SIGKILLed while appending.
