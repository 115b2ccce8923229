// Package pyplugins holds the end-to-end tests of Python plugins: the
// control-tower and data-gateway binaries running the example plugins
// written with the Python kit (sdk/python), built into zipapps by
// scripts/pyplugins, as they run Go plugins.
package pyplugins
