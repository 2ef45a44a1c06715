"""VHDL for a ``FixedPointModel``: elasticai.creator's layer designs, our network top and testbench.

What elasticai.creator 0.67 generates is used as it is, with two exceptions found in GHDL here:

* its fixed-point ``Linear`` sizes the parameter-ROM address as ``log2(IN*OUT)`` bits, but the ROM
  holds ``(IN+1)*OUT`` words (the bias follows each row's weights); whenever the two differ the
  design does not elaborate (a 6->5 layer: 5 address bits for a 6-bit ROM). ``patch_linear`` widens
  the counter, the only change to a generated file;
* its ``Sequential`` wires one Linear's ``x`` straight to the previous Linear's ``y``, which is a
  register read one clock after the address, so from the second layer on every input is multiplied
  by its neighbour's weight (GHDL: 76 of 80 outputs wrong for a 6-5-4 net). Our ``network.vhd``
  instead copies each layer's outputs, through its activation, into a buffer that the next layer
  reads within the cycle, as its own input would be read.

The testbench is ours (the package has none for Linear): it reads integer samples from a text file,
runs each through the network, counts clock cycles from ``enable`` to ``done`` and prints the
board protocol's JSON lines (``explorer.targets.protocol``) with raw integer outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

from .fpga_fixed import FixedPointModel

TOP = "network"
TESTBENCH = "tb"
LINEAR_BUG = "log2(IN_FEATURE_NUM*OUT_FEATURE_NUM)"
LINEAR_FIX = "log2((IN_FEATURE_NUM+1)*OUT_FEATURE_NUM)"
PATCHES = [f"linear_*.vhd: parameter ROM address {LINEAR_BUG} -> {LINEAR_FIX} (the ROM holds a bias after each row)"]
MAX_CYCLES_PER_SAMPLE = 10_000_000


def address_width(count: int) -> int:
    """elasticai's ``calculate_address_width``: ceil(log2(count)), at least 1."""
    return max(1, (count - 1).bit_length())


def patch_linear(text: str, name: str) -> str:
    if text.count(LINEAR_BUG) != 1:
        raise RuntimeError(f"{name}: elasticai.creator's Linear template changed (expected one '{LINEAR_BUG}'); "
                           "re-check the FPGA target against it in GHDL")
    return text.replace(LINEAR_BUG, LINEAR_FIX)


def write_layers(fixed: FixedPointModel, folder: Path) -> list[str]:
    """elasticai.creator's design files of every layer under ``folder``; returns them (relative to
    ``folder``) in the order GHDL must analyse them."""
    from elasticai.creator.file_generation.on_disk_path import OnDiskPath

    sources: list[str] = []
    stage_index = 0
    for name, module in fixed.elasticai_layers():
        lut = None if name.startswith("linear_") else fixed.stages[stage_index - 1].lut
        design = module.create_design(name) if lut is None else lut_design(name, module, lut)
        design.save_to(OnDiskPath(name, parent=str(folder)))
        if name.startswith("linear_"):
            stage = fixed.stages[stage_index]
            stage_index += 1
            rows = [list(map(int, r)) for r in stage.weight]
            if design.weights != rows or list(design.bias) != list(map(int, stage.bias)):
                raise RuntimeError(f"{name}: elasticai.creator quantised the parameters differently from the reference")
            path = folder / name / f"{name}.vhd"
            path.write_text(patch_linear(path.read_text(), name))
            sources += [f"{name}/{name}_rom.vhd", f"{name}/{name}.vhd"]
        else:
            expected = list(zip(*(a.tolist() for a in lut))) if lut is not None else None
            if expected and written_table(folder / name / f"{name}.vhd") != (expected[:-1], expected[-1][1]):
                raise RuntimeError(f"{name}: the lookup table in the VHDL differs from the reference's")
            sources.append(f"{name}/{name}.vhd")
    return sources


def lut_design(name: str, module, lut) -> object:
    """elasticai's ``PrecomputedScalarFunction`` as the module's ``create_design`` builds it, with the
    table's values looked up instead of recomputed (each is a PyTorch forward pass)."""
    from elasticai.creator.vhdl.shared_designs.precomputed_scalar_function import PrecomputedScalarFunction

    table = dict(zip(*(a.tolist() for a in lut)))
    bits = module._config.total_bits
    return PrecomputedScalarFunction(name=name, input_width=bits, output_width=bits, function=table.__getitem__,
                                     inputs=list(table))


def written_table(path: Path) -> tuple[list[tuple[int, int]], int | None]:
    """A generated lookup table read back from its VHDL: the (input, output) pairs of its if/elsif
    chain and the output of its final else (which stands for the table's last input)."""
    text = path.read_text()
    pairs = [(int(a), int(b)) for a, b in re.findall(
        r"if signed_x <= to_signed\((-?\d+), BITWIDTH_OUTPUT\) then signed_y <= to_signed\((-?\d+),", text)]
    last = re.search(r"else signed_y <= to_signed\((-?\d+),", text)
    return pairs, int(last.group(1)) if last else None


def _stage_names(fixed: FixedPointModel) -> list[tuple[str, str | None]]:
    """(linear entity, activation entity or None) per stage, as ``elasticai_layers`` names them."""
    entity = {"relu": "relu", "relu6": "hardtanh", "sigmoid": "sigmoid", "tanh": "tanh"}
    return [(f"linear_{i}", f"{entity[s.activation]}_{i}" if s.activation in entity else None)
            for i, s in enumerate(fixed.stages)]


def network_vhdl(fixed: FixedPointModel) -> str:
    """The top: stage i's ``done`` starts a copy of its outputs (through its activation) into
    buffer i; the copy's completion enables stage i+1, which reads the buffer combinationally."""
    dw = fixed.fmt.total_bits
    stages = fixed.stages
    names = _stage_names(fixed)
    last = len(stages) - 1
    xa = address_width(stages[0].in_features)
    ya = address_width(stages[-1].out_features)
    decls: list[str] = []
    body: list[str] = []
    for i, (stage, (linear, act)) in enumerate(zip(stages, names)):
        xai, yai = address_width(stage.in_features), address_width(stage.out_features)
        decls += [f"    signal s{i}_enable, s{i}_done : std_logic;",
                  f"    signal s{i}_x, s{i}_y, s{i}_act : std_logic_vector(DATA_WIDTH-1 downto 0);",
                  f"    signal s{i}_x_address : std_logic_vector({xai}-1 downto 0);",
                  f"    signal s{i}_y_address : std_logic_vector({yai}-1 downto 0);"]
        if i == 0:
            body += ["    s0_enable <= enable;", "    s0_x <= x;", "    x_address <= s0_x_address;"]
        else:
            prev = stages[i - 1].out_features
            body += [f"    s{i}_enable <= c{i - 1}_done;",
                     f"    s{i}_x <= b{i - 1}(to_integer(unsigned(s{i}_x_address)))"
                     f" when to_integer(unsigned(s{i}_x_address)) < {prev} else (others => '0');"]
        body += [f"    i_{linear} : entity work.{linear}(rtl)",
                 f"        port map (enable => s{i}_enable, clock => clock, x_address => s{i}_x_address,",
                 f"                  y_address => s{i}_y_address, x => s{i}_x, y => s{i}_y, done => s{i}_done);"]
        if act is None:
            body.append(f"    s{i}_act <= s{i}_y;")
        else:  # combinational in elasticai's design; enable tied high so its process follows x alone
            body += [f"    i_{act} : entity work.{act}(rtl)",
                     f"        port map (enable => '1', clock => clock, x => s{i}_y, y => s{i}_act);"]
        if i == last:
            body += [f"    s{i}_y_address <= y_address;", f"    y <= s{i}_act;", f"    done <= s{i}_done;"]
            continue
        n = stage.out_features
        decls += [f"    type b{i}_t is array (0 to {n}-1) of std_logic_vector(DATA_WIDTH-1 downto 0);",
                  f"    signal b{i} : b{i}_t := (others => (others => '0'));",
                  f"    signal c{i}_address, c{i}_index : natural range 0 to {n}-1 := 0;",
                  f"    signal c{i}_issuing, c{i}_valid, c{i}_done : std_logic := '0';"]
        body += [f"    s{i}_y_address <= std_logic_vector(to_unsigned(c{i}_address, {yai}));",
                 f"    -- copy stage {i}: the layer registers y(address) at one edge, the buffer stores it at the next",
                 f"    copy_{i} : process (clock)",
                 "    begin",
                 "        if rising_edge(clock) then",
                 f"            if s{i}_done = '0' then",
                 f"                c{i}_address <= 0; c{i}_issuing <= '1'; c{i}_valid <= '0'; c{i}_done <= '0';",
                 "            else",
                 f"                c{i}_valid <= c{i}_issuing;",
                 f"                c{i}_index <= c{i}_address;",
                 f"                if c{i}_issuing = '1' then",
                 f"                    if c{i}_address = {n}-1 then c{i}_issuing <= '0';",
                 f"                    else c{i}_address <= c{i}_address + 1; end if;",
                 "                end if;",
                 f"                if c{i}_valid = '1' then b{i}(c{i}_index) <= s{i}_act; end if;",
                 f"                if c{i}_issuing = '0' and c{i}_valid = '0' then c{i}_done <= '1'; end if;",
                 "            end if;",
                 "        end if;",
                 "    end process;"]
    return "\n".join([
        "-- Generated by explorer (FPGA target): elasticai.creator fixed-point layers chained through",
        "-- copy buffers (elasticai's Sequential reads a registered output one cycle late).",
        "library ieee;",
        "use ieee.std_logic_1164.all;",
        "use ieee.numeric_std.all;",
        "",
        f"entity {TOP} is",
        f"    generic (DATA_WIDTH : natural := {dw});",
        "    port (",
        "        enable    : in  std_logic;",
        "        clock     : in  std_logic;",
        f"        x_address : out std_logic_vector({xa}-1 downto 0);",
        f"        y_address : in  std_logic_vector({ya}-1 downto 0);",
        "        x         : in  std_logic_vector(DATA_WIDTH-1 downto 0);",
        "        y         : out std_logic_vector(DATA_WIDTH-1 downto 0);",
        "        done      : out std_logic",
        "    );",
        f"end entity {TOP};",
        "",
        f"architecture rtl of {TOP} is",
        *decls,
        "begin",
        *body,
        "end architecture rtl;",
        ""])


def testbench_vhdl(fixed: FixedPointModel) -> str:
    """VHDL-2008 testbench: samples file (count, then one line of integers per sample) in, JSON lines out."""
    dw, frac = fixed.fmt.total_bits, fixed.fmt.frac_bits
    n_in, n_out = fixed.input_size, fixed.output_size
    xa, ya = address_width(n_in), address_width(n_out)
    q = '""'
    return f"""-- Generated by explorer (FPGA target): feeds the exported samples to the network, counts clock
-- cycles from enable to done and prints the board protocol (JSON lines) on standard output.
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;
use std.textio.all;
use std.env.finish;

entity {TESTBENCH} is
    generic (SAMPLES_FILE : string := "samples.txt");
end entity {TESTBENCH};

architecture sim of {TESTBENCH} is
    constant DATA_WIDTH : natural := {dw};
    constant X_COUNT : natural := {n_in};
    constant Y_COUNT : natural := {n_out};
    constant MAX_CYCLES : natural := {MAX_CYCLES_PER_SAMPLE};
    type x_array is array (0 to X_COUNT - 1) of std_logic_vector(DATA_WIDTH - 1 downto 0);
    signal data_in : x_array := (others => (others => '0'));
    signal clock, enable, done : std_logic := '0';
    signal x, y : std_logic_vector(DATA_WIDTH - 1 downto 0);
    signal x_address : std_logic_vector({xa} - 1 downto 0);
    signal y_address : std_logic_vector({ya} - 1 downto 0) := (others => '0');
    signal running : boolean := true;
begin
    uut : entity work.{TOP}(rtl)
        port map (enable => enable, clock => clock, x_address => x_address, y_address => y_address,
                  x => x, y => y, done => done);

    clock <= not clock after 5 ns when running;
    -- the network reads its input like an asynchronous RAM
    x <= data_in(to_integer(unsigned(x_address))) when to_integer(unsigned(x_address)) < X_COUNT
         else (others => '0');

    main : process
        file samples : text;
        variable status : file_open_status;
        variable l, o : line;
        variable count, v, cycles : integer;
        variable ok : boolean;
    begin
        file_open(status, samples, SAMPLES_FILE, read_mode);
        if status /= open_ok then
            write(o, string'("{{{q}event{q}:{q}error{q},{q}message{q}:{q}cannot open samples file{q}}}"));
            writeline(output, o);
            running <= false;
            finish;
        end if;
        readline(samples, l);
        read(l, count);
        write(o, string'("{{{q}event{q}:{q}ready{q},{q}input_size{q}:") & integer'image(X_COUNT)
                 & ",{q}output_size{q}:" & integer'image(Y_COUNT)
                 & ",{q}total_bits{q}:{dw},{q}frac_bits{q}:{frac},{q}simulator{q}:{q}ghdl{q}}}");
        writeline(output, o);
        for n in 0 to count - 1 loop
            readline(samples, l);
            for i in 0 to X_COUNT - 1 loop
                read(l, v, ok);
                if not ok then
                    write(o, string'("{{{q}event{q}:{q}error{q},{q}message{q}:{q}sample ") & integer'image(n)
                             & " has fewer than " & integer'image(X_COUNT) & " values{q}}}");
                    writeline(output, o);
                    running <= false;
                    finish;
                end if;
                data_in(i) <= std_logic_vector(to_signed(v, DATA_WIDTH));
            end loop;
            -- idle until every stage has left its done state, then start
            enable <= '0';
            wait until rising_edge(clock);
            while done /= '0' loop
                wait until rising_edge(clock);
            end loop;
            wait until rising_edge(clock);
            enable <= '1';
            cycles := 0;
            loop
                wait until rising_edge(clock);
                cycles := cycles + 1;
                exit when done = '1';
                if cycles >= MAX_CYCLES then
                    write(o, string'("{{{q}event{q}:{q}error{q},{q}message{q}:{q}no done after ")
                             & integer'image(MAX_CYCLES) & " cycles{q}}}");
                    writeline(output, o);
                    running <= false;
                    finish;
                end if;
            end loop;
            write(o, string'("{{{q}event{q}:{q}result{q},{q}index{q}:") & integer'image(n)
                     & ",{q}cycles{q}:" & integer'image(cycles) & ",{q}output{q}:[");
            for k in 0 to Y_COUNT - 1 loop
                y_address <= std_logic_vector(to_unsigned(k, y_address'length));
                wait until rising_edge(clock);
                wait for 1 ns;
                if k > 0 then
                    write(o, string'(","));
                end if;
                write(o, integer'image(to_integer(signed(y))));
            end loop;
            write(o, string'("]}}"));
            writeline(output, o);
        end loop;
        write(o, string'("{{{q}event{q}:{q}done{q},{q}count{q}:") & integer'image(count) & "}}");
        writeline(output, o);
        running <= false;
        finish;
    end process;
end architecture sim;
"""


def write_design(fixed: FixedPointModel, folder: Path) -> list[str]:
    """All VHDL of the model under ``folder``; returns every source (relative) in analysis order,
    the testbench last. ``sources.txt`` lists the same order for ``toolchains/fpga/build.sh``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = write_layers(fixed, folder)
    (folder / f"{TOP}.vhd").write_text(network_vhdl(fixed))
    (folder / f"{TESTBENCH}.vhd").write_text(testbench_vhdl(fixed))
    sources += [f"{TOP}.vhd", f"{TESTBENCH}.vhd"]
    (folder / "sources.txt").write_text("\n".join(sources) + "\n")
    return sources


def write_samples(x_int, path: Path) -> None:
    """The testbench's input file: the count, then one line of integers per sample."""
    lines = [str(len(x_int))] + [" ".join(str(int(v)) for v in row) for row in x_int]
    path.write_text("\n".join(lines) + "\n")
