// Package defaults completes a package's Config from its DefaultConfig, so
// each default is written once, in DefaultConfig, and not again in a
// list of "if zero, set" lines.
package defaults

import "reflect"

// Fill gives each field of *cfg that is unset its value in def: a number
// of zero or less, an empty string, a nil slice, map, pointer, func or
// interface. Other fields, and the fields of nested structs, are left as
// they are. cfg must point to a struct.
func Fill[T any](cfg *T, def T) {
	v, d := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(def)
	for i := range v.NumField() {
		if f := v.Field(i); f.CanSet() && unset(f) {
			f.Set(d.Field(i))
		}
	}
}

func unset(f reflect.Value) bool {
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int() <= 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return f.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return f.Float() <= 0
	case reflect.String:
		return f.Len() == 0
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Func, reflect.Interface:
		return f.IsNil()
	}
	return false
}
