/**
 * The part of ONNX's schema (onnx/onnx.proto3, Apache-2.0, Copyright (c) ONNX Project Contributors)
 * that an exported vitkit model uses, with ONNX's field numbers, encoded and decoded by protobufjs.
 * Field numbers and names follow onnx.proto3 exactly so any ONNX reader decodes the file.
 */
import protobuf from 'protobufjs';

// SPDX-License-Identifier: Apache-2.0 — a subset of https://github.com/onnx/onnx/blob/main/onnx/onnx.proto3
const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; }
  string name = 1;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  AttributeType type = 20;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  string domain = 7;
}
message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
`;

let root: protobuf.Root | null = null;
/** onnx.ModelProto, from the schema above (parsed once). */
export function modelProto(): protobuf.Type {
  root ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  return root.lookupType('onnx.ModelProto');
}

/** TensorProto.DataType codes used here */
export const FLOAT = 1, INT64 = 7;
/** AttributeProto.AttributeType codes used here */
export const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const;
