package controllers

import "unsafe"

// unsafeStringData exposes a string's backing array, to prove that interning shares it.
func unsafeStringData(s string) *byte { return unsafe.StringData(s) }
