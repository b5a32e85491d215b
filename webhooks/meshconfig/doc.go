// Package meshconfig admits MeshConfig objects only when every traffic setting renders, and
// warns about settings that quietly take traffic out of the mesh.
package meshconfig
