#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns nitro's syscall specs and name tables into C++ (run by the build, never committed).

Inputs:
  data/syscalls/<abi>.spec  one line per system call; the grammar is in x86_64.spec's header
  data/xlat/<table>.in      one name table per file; its grammar is below

Name table grammar (one item per line, '#' starts a comment):
  @kind flags|enum       required. flags: a bit set printed "A|B|0x40"; enum: one value
  NAME VALUE             a named bit (flags, may span several bits) or value (enum)
  @field MASK [TABLE] [last]
                         flags only: the bits under MASK hold a number, not bits (O_ACCMODE,
                         MAP_TYPE, CSIGNAL); it is named from the "= NAME VALUE" lines that
                         follow or from the enum TABLE, and printed before the flags (after
                         them with "last", as strace prints clone's exit signal)
  = NAME VALUE           a value of the field
  @rest hex|octal        flags only: how unnamed bits print (default hex; mode_t uses octal)
  @range NAME LO HI      enum only: LO prints NAME, LO+n prints NAME+n up to HI (SIGRTMIN+n)
VALUE is a C literal: 0x1f, 0755 (octal), 42 or -100.

Every error names file:line and exits with status 1; nothing is written then.
"""

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_ARGS = 6
MAX_NR = 1023  # the number-indexed arrays stay small; x86 numbers end near 450
IDENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*$')
TABLE_STEM = re.compile(r'[a-z][a-z0-9_]*$')

# Spec type -> (ArgType enumerator, parameter kind). Parameter kinds: None (no parameter),
# 'len' (an integer argument), 'len_or_ret' (an integer argument or "ret"), 'lenptr' (a
# socklen_ptr argument), 'tag' (an identifier naming a kernel structure).
BUILTIN_TYPES = {
    'int': ('Int', None),
    'uint': ('Uint', None),
    'long': ('Long', None),
    'ulong': ('Ulong', None),
    'size': ('Size', None),
    'ssize': ('Ssize', None),
    'hex': ('Hex', None),
    'ptr': ('Ptr', None),
    'fd': ('Fd', None),
    'dirfd': ('Dirfd', None),
    'cstring': ('Cstring', None),
    'buf_in': ('BufIn', 'len'),
    'buf_out': ('BufOut', 'len_or_ret'),
    'iovec_in': ('IovecIn', 'len'),
    'iovec_out': ('IovecOut', 'len'),
    'argv': ('Argv', None),
    'sockaddr': ('Sockaddr', 'len'),
    'sockaddr_out': ('SockaddrOut', 'lenptr'),
    'buf_out_lenptr': ('BufOutLenPtr', 'lenptr'),
    'pollfd': ('Pollfd', 'len'),
    'epoll_events': ('EpollEvents', 'len'),
    'fd_set': ('FdSet', 'len'),
    'sigframe': ('SigFrame', None),
    'socklen_ptr': ('SocklenPtr', None),
    'struct_in': ('StructIn', 'tag'),
    'struct_out': ('StructOut', 'tag'),
    'msghdr_in': ('MsghdrIn', None),
    'msghdr_out': ('MsghdrOut', None),
    'mmsghdr': ('Mmsghdr', 'len'),
    'int_out': ('IntOut', None),
    'mmsghdr_out': ('MmsghdrOut', 'len'),
}
INTEGER_TYPES = {'int', 'uint', 'long', 'ulong', 'size', 'ssize', 'hex'}
RET_KINDS = {'int': 'Int', 'long': 'Long', 'fd': 'Fd', 'ptr': 'Ptr', 'size': 'Size',
             'void': 'Void'}
# ABIs in the order of nitro::Abi.
ABIS = {'x86_64': 'X86_64', 'i386': 'I386'}

SPEC_LINE = re.compile(r'(\d+)\s+([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*->\s*(\S+)(.*)$')
ARG = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s+([a-z_][a-z0-9_]*)\s*(?:\(\s*([^()\s]*)\s*\))?$')

class SpecError(Exception):
    def __init__(self, path, line, message):
        super().__init__(f'{path}:{line}: error: {message}')


def parse_value(text, path, line):
    """Parses a C integer literal (decimal, 0x hex, 0 octal, optional minus)."""
    m = re.fullmatch(r'(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)', text)
    if not m:
        raise SpecError(path, line, f'"{text}" is not an integer literal (42, 0x2a or 052)')
    digits = m.group(2)
    if digits[:2].lower() == '0x':
        value = int(digits, 16)
    elif digits.startswith('0'):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if m.group(1) else value


def strip_comment(raw):
    return raw.split('#', 1)[0].strip()


def camel(stem):
    """open_flags -> OpenFlags; mode_t -> Mode (the C "_t" suffix adds nothing here)."""
    if stem.endswith('_t'):
        stem = stem[:-2]
    return ''.join(part.capitalize() for part in stem.split('_') if part)


@dataclass
class Xlat:
    name: str
    path: str
    kind: str = ''
    entries: list = field(default_factory=list)        # (name, value, line)
    field_mask: int = 0
    field_line: int = 0
    field_entries: list = field(default_factory=list)  # (name, value, line)
    field_table: str = ''
    field_last: bool = False
    rest: str = 'hex'
    range: tuple = None                                 # (name, lo, hi)

    @property
    def enumerator(self):
        return camel(self.name)


def parse_xlat(path):
    stem = Path(path).name[:-len('.in')]
    if not TABLE_STEM.match(stem):
        raise SpecError(path, 1, f'table file name "{stem}" must be lower_snake_case')
    t = Xlat(stem, str(path))
    names = {}
    with open(path, encoding='utf-8') as f:
        for lineno, raw in enumerate(f, 1):
            text = strip_comment(raw)
            if not text:
                continue
            words = text.split()
            if words[0] == '@kind':
                if len(words) != 2 or words[1] not in ('flags', 'enum'):
                    raise SpecError(path, lineno, '@kind takes "flags" or "enum"')
                if t.kind:
                    raise SpecError(path, lineno, '@kind given twice')
                t.kind = words[1]
                continue
            if not t.kind:
                raise SpecError(path, lineno, 'the table must start with @kind flags|enum')
            if words[0] == '@field':
                if t.kind != 'flags':
                    raise SpecError(path, lineno, '@field belongs to flags tables')
                if t.field_mask:
                    raise SpecError(path, lineno, '@field given twice')
                if words[-1] == 'last':
                    t.field_last = True
                    words = words[:-1]
                if len(words) not in (2, 3):
                    raise SpecError(path, lineno, '@field takes a mask, an optional table and '
                                    'an optional "last"')
                t.field_mask = parse_value(words[1], path, lineno)
                if t.field_mask <= 0:
                    raise SpecError(path, lineno, '@field mask must be positive')
                t.field_line = lineno
                if len(words) == 3:
                    t.field_table = words[2]
            elif words[0] == '@rest':
                if t.kind != 'flags' or len(words) != 2 or words[1] not in ('hex', 'octal'):
                    raise SpecError(path, lineno, '@rest takes "hex" or "octal" (flags only)')
                t.rest = words[1]
            elif words[0] == '@range':
                if t.kind != 'enum' or len(words) != 4:
                    raise SpecError(path, lineno, '@range takes NAME LO HI (enum only)')
                if t.range:
                    raise SpecError(path, lineno, '@range given twice')
                lo = parse_value(words[2], path, lineno)
                hi = parse_value(words[3], path, lineno)
                if not IDENT.match(words[1]) or lo > hi:
                    raise SpecError(path, lineno, '@range needs a name and LO <= HI')
                t.range = (words[1], lo, hi)
            elif words[0].startswith('@'):
                raise SpecError(path, lineno, f'unknown directive {words[0]}')
            else:
                is_field = words[0] == '='
                if is_field:
                    words = words[1:]
                if len(words) != 2 or not IDENT.match(words[0]):
                    raise SpecError(path, lineno, 'expected "NAME VALUE"')
                name, value = words[0], parse_value(words[1], path, lineno)
                if name in names:
                    raise SpecError(path, lineno,
                                    f'{name} is already defined at line {names[name]}')
                names[name] = lineno
                if is_field:
                    if not t.field_mask or t.field_table:
                        raise SpecError(path, lineno, '"= NAME VALUE" needs an @field without '
                                        'a table before it')
                    if value < 0 or value & ~t.field_mask:
                        raise SpecError(path, lineno, f'{name} lies outside the field mask')
                    t.field_entries.append((name, value, lineno))
                else:
                    if t.kind == 'flags':
                        if value < 0 or value >= 1 << 64:
                            raise SpecError(path, lineno, f'{name}: flags are 64-bit unsigned')
                        if value & t.field_mask:
                            raise SpecError(path, lineno, f'{name} overlaps the @field mask')
                    elif not -(1 << 63) <= value < 1 << 64:
                        raise SpecError(path, lineno, f'{name} does not fit 64 bits')
                    t.entries.append((name, value, lineno))
    if not t.kind:
        raise SpecError(path, 1, 'empty table: @kind flags|enum is required')
    for group in (t.entries, t.field_entries):
        seen = {}
        for name, value, lineno in group:
            if value in seen:
                raise SpecError(path, lineno, f'{name} repeats the value of {seen[value]}; '
                                'a value has one name')
            seen[value] = name
    if t.range:
        for name, value, lineno in t.entries:
            if t.range[1] <= value <= t.range[2]:
                raise SpecError(path, lineno, f'{name} lies inside @range {t.range[0]}')
    return t


def load_xlats(directory):
    tables = {}
    for path in sorted(Path(directory).glob('*.in')):
        t = parse_xlat(path)
        tables[t.name] = t
    for t in tables.values():
        if t.field_table:
            ref = tables.get(t.field_table)
            if ref is None or ref.kind != 'enum':
                raise SpecError(t.path, t.field_line,
                                f'@field table "{t.field_table}" is not an enum table')
        elif t.field_mask and not t.field_entries:
            raise SpecError(t.path, t.field_line, '@field has no "= NAME VALUE" lines')
    if len(tables) > 250:
        raise SpecError(directory, 0, 'too many tables for a one-byte table id')
    return tables


@dataclass
class Arg:
    name: str
    type: str        # spec type (builtin or table name)
    param: str       # parameter text or ''


@dataclass
class Syscall:
    nr: int
    name: str
    args: list
    ret: str
    entry: str
    compat: bool
    ni: bool
    line: int


@dataclass
class Spec:
    path: str
    abi: str = ''
    handler: str = ''
    compat_handler: str = ''
    syscalls: list = field(default_factory=list)


def parse_args(text, path, lineno):
    text = text.strip()
    if not text:
        return []
    args = []
    for piece in text.split(','):
        m = ARG.match(piece.strip())
        if not m:
            raise SpecError(path, lineno, f'argument "{piece.strip()}" is not "name type" or '
                            '"name type(parameter)"')
        args.append(Arg(m.group(1), m.group(2), m.group(3) or ''))
    return args


def check_syscall(sc, spec, tables, path):
    lineno = sc.line
    if len(sc.args) > MAX_ARGS:
        raise SpecError(path, lineno, f'{sc.name} has {len(sc.args)} arguments; at most '
                        f'{MAX_ARGS} are passed in registers')
    names = [a.name for a in sc.args]
    for a in sc.args:
        if names.count(a.name) > 1:
            raise SpecError(path, lineno, f'{sc.name}: argument name "{a.name}" repeats')
    for a in sc.args:
        if a.type in BUILTIN_TYPES:
            kind = BUILTIN_TYPES[a.type][1]
        elif a.type in tables:
            kind = None
        else:
            raise SpecError(path, lineno, f'{sc.name}: unknown type "{a.type}" of "{a.name}" '
                            '(neither a built-in type nor a data/xlat table)')
        if kind is None:
            if a.param:
                raise SpecError(path, lineno, f'{sc.name}: type {a.type} takes no parameter')
            continue
        if not a.param:
            raise SpecError(path, lineno, f'{sc.name}: type {a.type} of "{a.name}" needs a '
                            'parameter in parentheses')
        if kind == 'tag':
            if not IDENT.match(a.param):
                raise SpecError(path, lineno, f'{sc.name}: {a.type} tag "{a.param}" is not an '
                                'identifier')
            continue
        if kind == 'len_or_ret' and a.param == 'ret':
            continue
        if a.param not in names:
            raise SpecError(path, lineno, f'{sc.name}: length argument "{a.param}" of '
                            f'"{a.name}" is not an argument of {sc.name}')
        target = sc.args[names.index(a.param)]
        if target is a:
            raise SpecError(path, lineno, f'{sc.name}: "{a.name}" cannot be its own length')
        if kind == 'lenptr':
            if target.type != 'socklen_ptr':
                raise SpecError(path, lineno, f'{sc.name}: length of "{a.name}" must be a '
                                f'socklen_ptr argument, "{a.param}" is {target.type}')
        elif target.type not in INTEGER_TYPES:
            raise SpecError(path, lineno, f'{sc.name}: length argument "{a.param}" of '
                            f'"{a.name}" must be an integer, not {target.type}')
    if sc.ret not in RET_KINDS:
        raise SpecError(path, lineno, f'{sc.name}: unknown return kind "{sc.ret}" (one of '
                        f'{", ".join(sorted(RET_KINDS))})')
    if sc.compat and not spec.compat_handler:
        raise SpecError(path, lineno, f'{sc.name}: "compat" needs @compat_handler in the file')


def parse_spec(path, tables):
    spec = Spec(str(path))
    by_nr, by_name = {}, {}
    with open(path, encoding='utf-8') as f:
        for lineno, raw in enumerate(f, 1):
            text = strip_comment(raw)
            if not text:
                continue
            if text.startswith('@'):
                words = text.split()
                if len(words) != 2:
                    raise SpecError(path, lineno, f'{words[0]} takes one value')
                key, value = words
                if key == '@abi':
                    if value not in ABIS:
                        raise SpecError(path, lineno, f'unknown ABI "{value}" (one of '
                                        f'{", ".join(ABIS)})')
                    spec.abi = value
                elif key in ('@handler', '@compat_handler'):
                    if value.count('{}') != 1:
                        raise SpecError(path, lineno, f'{key} needs exactly one "{{}}"')
                    setattr(spec, key[1:], value)
                else:
                    raise SpecError(path, lineno, f'unknown directive {key}')
                continue
            m = SPEC_LINE.match(text)
            if not m:
                raise SpecError(path, lineno, 'expected "<number> <name>(<args>) -> <return> '
                                '[attributes]"')
            nr, name = int(m.group(1)), m.group(2)
            if nr > MAX_NR:
                raise SpecError(path, lineno, f'number {nr} is above {MAX_NR}')
            args = parse_args(m.group(3), path, lineno)
            entry, compat, ni = name, False, False
            for attr in m.group(5).split():
                if attr == 'compat' and not compat:
                    compat = True
                elif attr == 'ni' and not ni:
                    ni = True
                elif attr.startswith('entry=') and IDENT.match(attr[6:]) and entry == name:
                    entry = attr[6:]
                else:
                    raise SpecError(path, lineno, f'{name}: bad or repeated attribute "{attr}"')
            if ni and (compat or entry != name):
                raise SpecError(path, lineno, f'{name}: "ni" excludes compat and entry=')
            sc = Syscall(nr, name, args, m.group(4), entry, compat, ni, lineno)
            if nr in by_nr:
                raise SpecError(path, lineno, f'number {nr} is already {by_nr[nr].name} '
                                f'(line {by_nr[nr].line})')
            if name in by_name:
                raise SpecError(path, lineno, f'{name} is already number {by_name[name].nr} '
                                f'(line {by_name[name].line})')
            by_nr[nr], by_name[name] = sc, sc
            spec.syscalls.append(sc)
            check_syscall(sc, spec, tables, path)
    if not spec.abi:
        raise SpecError(path, 1, 'missing @abi')
    if not spec.handler:
        raise SpecError(path, 1, 'missing @handler')
    if not spec.syscalls:
        raise SpecError(path, 1, 'no system calls')
    return spec


def c_string(text):
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def u64(value):
    return f'0x{value & 0xffffffffffffffff:x}ULL'


def emit_header(tables):
    out = ['// Generated by src/syscalls/gen_tables.py from data/xlat/*.in; do not edit.',
           '#pragma once', '', '#include <cstddef>', '#include <cstdint>', '',
           'namespace nitro {', '',
           '/// Name tables, one per data/xlat/<name>.in, usable with format_flags/format_enum.',
           'enum class FlagTable : std::uint8_t {']
    for t in tables.values():
        out.append(f'    {t.enumerator},  ///< data/xlat/{t.name}.in ({t.kind})')
    out += ['};', '',
            f'/// Number of FlagTable values.',
            f'inline constexpr std::size_t kFlagTableCount = {len(tables)};', '',
            '}  // namespace nitro', '']
    return '\n'.join(out)


def emit_entries(var, entries, kind_sorted):
    rows = sorted(entries, key=lambda e: e[1] & 0xffffffffffffffff) if kind_sorted else entries
    if not rows:
        return []
    out = [f'constexpr XlatEntry {var}[] = {{']
    out += [f'    {{{u64(value)}, {c_string(name)}}},' for name, value, _ in rows]
    out.append('};')
    return out


def emit_source(tables, specs):
    out = ['// Generated by src/syscalls/gen_tables.py from data/syscalls/*.spec and',
           '// data/xlat/*.in; do not edit.', '#include "syscall_data.h"', '',
           'namespace nitro::detail {', 'namespace {', '']
    for t in tables.values():
        base = f'k{t.enumerator}'
        out += emit_entries(f'{base}Entries', t.entries, t.kind == 'enum')
        out += emit_entries(f'{base}Field', t.field_entries, True)
        if t.range:
            name, lo, hi = t.range
            out.append(f'constexpr XlatRange {base}Range{{{c_string(name)}, {lo}, {hi}}};')
        out.append('')
    out += ['}  // namespace', '',
            'constinit const XlatTableData kXlatTables[kFlagTableCount] = {']
    for t in tables.values():
        base = f'k{t.enumerator}'
        entries = f'{base}Entries' if t.entries else '{}'
        kind = 'XlatKind::Flags' if t.kind == 'flags' else 'XlatKind::Enum'
        if t.field_table:
            ref = tables[t.field_table]
            rbase = f'k{ref.enumerator}'
            field_entries = f'{rbase}Entries' if ref.entries else '{}'
            field_range = f'&{rbase}Range' if ref.range else 'nullptr'
        else:
            field_entries = f'{base}Field' if t.field_entries else '{}'
            field_range = 'nullptr'
        rng = f'&{base}Range' if t.range else 'nullptr'
        rest = 'XlatRest::Octal' if t.rest == 'octal' else 'XlatRest::Hex'
        last = 'true' if t.field_last else 'false'
        out.append(f'    {{{c_string(t.name)}, {kind}, {entries}, {u64(t.field_mask)}, '
                   f'{field_entries}, {field_range}, {last}, {rng}, {rest}}},')
    out += ['};', '', 'namespace {', '']
    for abi, spec in specs.items():
        enum = ABIS[abi]
        out.append(f'constexpr SyscallInfo kSyscalls{enum}[] = {{')
        for sc in sorted(spec.syscalls, key=lambda s: s.nr):
            names = [a.name for a in sc.args]
            rows = []
            for a in sc.args:
                if a.type in BUILTIN_TYPES:
                    etype, kind = BUILTIN_TYPES[a.type]
                    if kind in ('len', 'len_or_ret', 'lenptr'):
                        aux = 'kAuxReturnValue' if a.param == 'ret' else names.index(a.param)
                    else:
                        aux = 'kNoAux'
                    tag = a.param if kind == 'tag' else ''
                else:
                    t = tables[a.type]
                    etype = 'Flags' if t.kind == 'flags' else 'Enum'
                    aux = f'table_id(FlagTable::{t.enumerator})'
                    tag = ''
                rows.append(f'{{{c_string(a.name)}, ArgType::{etype}, {aux}, {c_string(tag)}}}')
            rows += ['{}'] * (MAX_ARGS - len(sc.args))
            if sc.ni:
                handler = spec.handler.replace('{}', 'ni_syscall')
            else:
                pattern = spec.compat_handler if sc.compat else spec.handler
                handler = pattern.replace('{}', sc.entry)
            out.append(f'    {{{sc.nr}, {c_string(sc.name)}, {c_string(handler)}, '
                       f'RetKind::{RET_KINDS[sc.ret]}, {len(sc.args)},')
            out.append(f'     {{{{{", ".join(rows)}}}}},')
            out.append(f'     {"false" if sc.ni else "true"}}},')
        out.append('};')
        ordered = sorted(spec.syscalls, key=lambda s: s.nr)
        size = ordered[-1].nr + 1
        index = [0xffff] * size
        for i, sc in enumerate(ordered):
            index[sc.nr] = i
        out.append(f'constexpr std::uint16_t kIndex{enum}[{size}] = {{')
        for start in range(0, size, 12):
            out.append('    ' + ', '.join(f'0x{v:04x}' for v in index[start:start + 12]) + ',')
        out.append('};')
        out.append(f'constexpr NameIndex kByName{enum}[] = {{')
        for sc in sorted(spec.syscalls, key=lambda s: s.name):
            out.append(f'    {{{c_string(sc.name)}, {sc.nr}}},')
        out.append('};')
        out.append('')
    out += ['}  // namespace', '', 'constinit const AbiTableData kAbiTables[kAbiCount] = {']
    for abi in specs:
        enum = ABIS[abi]
        out.append(f'    {{{c_string(abi)}, kSyscalls{enum}, kIndex{enum}, kByName{enum}}},')
    out += ['};', '', '}  // namespace nitro::detail', '']
    return '\n'.join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--xlat-dir', required=True, help='directory of <table>.in files')
    parser.add_argument('--spec', action='append', default=[], help='a <abi>.spec file')
    parser.add_argument('--header', help='generated header to write')
    parser.add_argument('--source', help='generated C++ source to write')
    args = parser.parse_args(argv)
    try:
        tables = load_xlats(args.xlat_dir)
        if not tables:
            raise SpecError(args.xlat_dir, 0, 'no *.in tables found')
        specs = {}
        for path in args.spec:
            spec = parse_spec(path, tables)
            if spec.abi in specs:
                raise SpecError(path, 1, f'ABI {spec.abi} is also described by '
                                f'{specs[spec.abi].path}')
            specs[spec.abi] = spec
    except SpecError as e:
        print(e, file=sys.stderr)
        return 1
    except OSError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.header or args.source:
        missing = [abi for abi in ABIS if abi not in specs]
        if missing:
            print(f'error: C++ output needs a spec for every ABI; missing {", ".join(missing)}',
                  file=sys.stderr)
            return 1
        specs = {abi: specs[abi] for abi in ABIS}
        for out_path, text in ((args.header, emit_header(tables)),
                               (args.source, emit_source(tables, specs))):
            if out_path:
                Path(out_path).parent.mkdir(parents=True, exist_ok=True)
                Path(out_path).write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main())
