from maas_emulator.cli import main

main()
