# cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=name -P embed_binary.cmake
# Writes a C++ source defining `extern "C" const unsigned char SYMBOL[]` with INPUT's bytes
# (64-byte aligned, as cuModuleLoadData wants for a fatbin).
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by embed_binary.cmake. Do not edit.\n"
  "extern \"C\" alignas(64) const unsigned char ${SYMBOL}[] = {\n${bytes}\n};\n")
