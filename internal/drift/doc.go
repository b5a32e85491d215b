// Package drift decides, from facts already gathered, whether a meshed pod still runs the
// traffic redirection its MeshConfig and annotations ask for. Rules are rendered into a pod only
// when it is admitted, so every MeshConfig change silently leaves older pods behind; this package
// names each such pod, says which values differ and where they came from, and gives the command
// that fixes it. It reads no API: controllers gather, this package judges.
package drift
