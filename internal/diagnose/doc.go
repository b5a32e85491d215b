// Package diagnose turns the manual troubleshooting runbooks of a meshed pod into checks over
// facts already gathered: each check says pass, warn or fail, why in one line, and the command
// that fixes it. It reads no API, so the same verdicts come out whether the facts were read from
// a cluster or from files, and every pod-level verdict is the drift package's, the one the
// operator writes into pod conditions.
package diagnose
