//! Tests of the joint decision.
