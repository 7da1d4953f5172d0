from lmdelta.cli import main

main()
