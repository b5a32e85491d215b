// Package golden is the one golden-file check the tests share: compare output with a file under
// testdata, and rewrite the file instead when the test binary runs with -update, so that every
// package reviews a changed output the same way (run with -update, read the diff, commit). It is
// test support; production code never imports it.
package golden
